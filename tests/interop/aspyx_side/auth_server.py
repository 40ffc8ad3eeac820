"""An aspyx-service server with its TokenContextMiddleware: ``python auth_server.py PORT``.

Serves component ``authinterop`` on 127.0.0.1:PORT over dispatch-json and dispatch-msgpack;
``whoami`` answers the access token aspyx's ``TokenContext`` holds (set by the middleware from
the ``Authorization`` header). Prints ``READY`` once uvicorn accepts connections and shuts
down when its stdin closes.
"""

import sys
import time
from typing import Optional

from aspyx.di import create, module
from aspyx_service import (
    AbstractComponent,
    ChannelAddress,
    ComponentRegistry,
    FastAPIServer,
    ServiceManager,
    ServiceModule,
    SessionManager,
    TokenContext,
    TokenContextMiddleware,
    implementation,
)
from aspyx_service.service import LocalComponentRegistry
from auth_contract import CHANNELS, AuthInteropComponent, VaultService
from fastapi import FastAPI

STARTUP_TIMEOUT = 20.0


@implementation()
class VaultServiceImpl(VaultService):
    def whoami(self) -> Optional[str]:
        return TokenContext.get_access_token()

    def secret(self) -> str:
        return "aspyx secret"

    async def whoami_async(self) -> Optional[str]:
        return TokenContext.get_access_token()


@implementation()
class AuthInteropComponentImpl(AbstractComponent, AuthInteropComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress(channel, f"http://127.0.0.1:{port}") for channel in CHANNELS]


@module(imports=[ServiceModule])
class ServerModule:
    @create()
    def create_registry(self) -> ComponentRegistry:
        return LocalComponentRegistry()

    @create()
    def create_session_storage(self) -> SessionManager.Storage:
        return SessionManager.InMemoryStorage()

    @create()
    def create_server(self, manager: ServiceManager, registry: ComponentRegistry) -> FastAPIServer:
        app = FastAPI()
        app.add_middleware(TokenContextMiddleware)
        return FastAPIServer(app, manager, registry)


def main() -> int:
    port = int(sys.argv[1])
    environment = FastAPIServer.boot(ServerModule, host="127.0.0.1", port=port)
    server = environment.get(FastAPIServer)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.server.started:
            if not server.thread.is_alive() or time.monotonic() > deadline:
                print("FAILED to start uvicorn", flush=True)
                return 1
            time.sleep(0.02)
        print("READY", flush=True)
        sys.stdin.read()  # the test closes our stdin to stop us
    finally:
        environment.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
