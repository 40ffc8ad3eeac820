"""A server process of one interface version for the rolling-upgrade tests.

``python upgrade_server.py <v1|v2> <json config>`` boots ``upgrade_v1`` or ``upgrade_v2``'s server module
on a free port of 127.0.0.1 (every channel: dispatch-json, dispatch-msgpack, dispatch-protobuf, rest),
prints ``READY <url>`` and serves until stdin closes (started by ``tests/registry/process_support.py``).
"""

from __future__ import annotations

import importlib
import sys

from warpcall import FastAPIServer


def main() -> None:
    version = importlib.import_module(f"upgrade_{sys.argv[1]}")
    environment = FastAPIServer.boot(version.ServerModule, host="127.0.0.1", port=0)
    try:
        print(f"READY {environment.get(FastAPIServer).url}", flush=True)
        sys.stdin.read()
    finally:
        environment.destroy()


if __name__ == "__main__":
    main()
