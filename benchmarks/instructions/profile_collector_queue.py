"""The profiled call's own share of ``warpcall.profile()``: a record queued, never folded during the count
(``profile_collector`` counts the whole cost, folding included)."""

from benchmarks.instructions.profile_collector import SETUP as _SETUP

SETUP = (
    """
import warpcall.observe.profile as profile_module
profile_module.FOLD_AT = 1 << 30  # the queue holds references to one record: a few hundred KB at most
"""
    + _SETUP
)

CASES = {
    "profile-add-queued": "add(record)",
    "emit-to-a-profile-queued": "emit(record)",
}
