"""What ``warpcall.profile()`` costs per record: the collector's side of a profiled call (the channel's
timed path is ``proxycall_observed``). A record as a dispatch call makes one: 9 client and 6 server phases."""

SETUP = """
from warpcall.observe.profile import profile
from warpcall.observe.records import CLIENT_PHASES, SERVER_PHASES, CallRecord, emit
from warpcall.observe.hdr import Histogram

record = CallRecord(
    "c:s:data", "dispatch-msgpack", "http://127.0.0.1:1", 153_000,
    {name: 3_000 + 17 * i for i, name in enumerate(CLIENT_PHASES)},
    {name: 2_000 + 13 * i for i, name in enumerate(SERVER_PHASES)},
    200,
)
collector = profile(max_records=0)  # figures only: no list of kept records growing during the count
add = collector.add
histogram = Histogram()
record_value = histogram.record
context_profile = profile(max_records=0).start()  # emit() below reaches it (and only it)
"""

CASES = {
    "histogram-record": "record_value(153_000)",
    "profile-add": "add(record)",
    "emit-to-a-profile": "emit(record)",
}
