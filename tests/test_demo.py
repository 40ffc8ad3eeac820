"""``warpcall demo`` end to end: two processes, the embedded registry, every channel, nothing left behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys


def test_demo_calls_every_channel_and_leaves_no_process(tmp_path):
    environment = {**os.environ, "WARPCALL_REGISTRY_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "warpcall", "demo", "--calls", "5"],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout
    assert "found through EmbeddedComponentRegistry" in output
    for channel in ("local", "dispatch-json", "dispatch-msgpack", "dispatch-protobuf", "rest"):
        row = next(line for line in output.splitlines() if line.startswith(channel + " "))
        assert "'hello world'" in row and "equal" in row and "Receipt(order_id=7, total=28.5, lines=3)" in row
        assert len(re.findall(r"\d+\.\d µs", row)) == 3
    pid = int(re.search(r"server process (\d+)", output).group(1))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        pass
    else:
        raise AssertionError(f"the demo's server process {pid} is still running")
    assert (tmp_path / "registry.sqlite3").exists()
