"""An aspyx-service server with its TokenContextMiddleware: ``python auth_server.py PORT``.

Serves component ``authinterop`` on 127.0.0.1:PORT over dispatch-json and dispatch-msgpack;
``whoami`` answers the access token aspyx's ``TokenContext`` holds (set by the middleware from
the ``Authorization`` header). Prints ``READY`` once uvicorn accepts connections and shuts
down when its stdin closes.
"""

import sys
from typing import Optional

from _harness import ServerModuleBase, loopback_addresses, serve
from aspyx.di import module
from aspyx_service import (
    AbstractComponent,
    ChannelAddress,
    ServiceModule,
    TokenContext,
    TokenContextMiddleware,
    implementation,
)
from auth_contract import CHANNELS, AuthInteropComponent, VaultService
from fastapi import FastAPI


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
        return loopback_addresses(port, CHANNELS)


@module(imports=[ServiceModule])
class ServerModule(ServerModuleBase):
    def make_app(self) -> FastAPI:
        app = FastAPI()
        app.add_middleware(TokenContextMiddleware)
        return app


if __name__ == "__main__":
    sys.exit(serve(ServerModule))
