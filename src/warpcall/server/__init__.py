"""Serving components: FastAPIServer and the dispatch endpoint it mounts.

Each name is imported on first use (PEP 562): the endpoint's modules load
without FastAPI and uvicorn, which only ``FastAPIServer`` needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

_EXPORTS = {
    "DispatchEndpoint": "warpcall.server.dispatch",
    "FastAPIServer": "warpcall.server.fastapi_server",
    "ServerLimits": "warpcall.server.limits",
    "ServerTLS": "warpcall.server.tls",
    **dict.fromkeys(("RequestContext", "ResponseContext", "TokenContextMiddleware"), "warpcall.server.context"),
    **dict.fromkeys(("join_paths", "parse_google_docstring"), "warpcall.server.docstrings"),
}

if TYPE_CHECKING:
    from warpcall.server.context import RequestContext, ResponseContext, TokenContextMiddleware
    from warpcall.server.dispatch import DispatchEndpoint
    from warpcall.server.docstrings import join_paths, parse_google_docstring
    from warpcall.server.fastapi_server import FastAPIServer
    from warpcall.server.limits import ServerLimits
    from warpcall.server.tls import ServerTLS
else:
    from warpcall._lazy import export_lazily

    __getattr__, __dir__ = export_lazily(__name__, _EXPORTS)

__all__ = [
    "DispatchEndpoint",
    "FastAPIServer",
    "RequestContext",
    "ResponseContext",
    "ServerLimits",
    "ServerTLS",
    "TokenContextMiddleware",
    "join_paths",
    "parse_google_docstring",
]
