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

from aspyx.di import Environment, create, module
from aspyx_service import (
    ChannelInstances,
    ComponentRegistry,
    ServiceManager,
    ServiceModule,
    SessionManager,
    TokenContext,
)
from auth_contract import CHANNELS, VaultService

TARGET_URL = ""


class FixedURLRegistry(ComponentRegistry):
    """Answers every lookup with TARGET_URL on both dispatch channels; registers nothing."""

    def register(self, descriptor, addresses) -> None:
        pass

    def deregister(self, descriptor) -> None:
        pass

    def watch(self, channel) -> None:
        pass

    def get_addresses(self, descriptor) -> list[ChannelInstances]:
        return [ChannelInstances(descriptor.name, channel, [TARGET_URL]) for channel in CHANNELS]


@module(imports=[ServiceModule])
class ClientModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return FixedURLRegistry()

    @create()
    def create_session_storage(self) -> SessionManager.Storage:
        return SessionManager.InMemoryStorage()


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


def main() -> int:
    global TARGET_URL
    TARGET_URL = sys.argv[1]
    tokens: dict[str, Any] = json.loads(sys.argv[2])
    environment = Environment(ClientModule)
    manager = environment.get(ServiceManager)
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
        environment.destroy()
    print("RESULT " + json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
