"""An aspyx-service client with tokens: ``python auth_client.py URL TOKENS_JSON``.

TOKENS_JSON maps a case name to the access token to set in aspyx's ``TokenContext`` (null: none).
For each channel and case it calls ``whoami`` and ``secret`` of component ``authinterop`` at URL and
prints one line ``RESULT <json>``: per channel, case and method, the value or the exception's type.
"""

import asyncio
import json
import sys
from functools import partial
from typing import Any, Callable

from _harness import ClientModuleBase, run_client
from aspyx.di import module
from aspyx_service import ServiceManager, ServiceModule, TokenContext
from auth_contract import CHANNELS, VaultService


@module(imports=[ServiceModule])
class ClientModule(ClientModuleBase):
    channels = CHANNELS


def outcome(call: Callable[[], Any]) -> dict:
    try:
        return {"ok": True, "value": call()}
    except Exception as exc:  # reported to the test, which asserts on it
        cause = exc.__cause__
        return {
            "ok": False, "error_type": type(exc).__name__, "message": str(exc)[:300],
            "cause_type": type(cause).__name__ if cause is not None else None,
            "cause_message": str(cause)[:300] if cause is not None else None,
        }


def calls(manager: ServiceManager) -> dict:
    tokens: dict[str, Any] = json.loads(sys.argv[2])
    report: dict[str, Any] = {}
    loop = asyncio.new_event_loop()  # one loop: aspyx's async client is bound to the loop it first ran on
    try:
        for channel in CHANNELS:
            vault = manager.get_service(VaultService, preferred_channel=channel)
            cases: dict[str, Any] = {}
            for case, token in tokens.items():
                if token is None:
                    TokenContext.clear()
                else:
                    TokenContext.set(token)
                cases[case] = {
                    "whoami": outcome(vault.whoami),
                    "secret": outcome(vault.secret),
                    # aspyx's async path (request_async) reads the refusal on its own
                    "whoami_async": outcome(partial(loop.run_until_complete, vault.whoami_async())),
                }
            TokenContext.clear()
            report[channel] = cases
    finally:
        loop.close()
    return report


if __name__ == "__main__":
    sys.exit(run_client(ClientModule, calls))
