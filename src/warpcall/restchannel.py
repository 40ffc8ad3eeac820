"""aspyx-service's ``restchannel`` module: REST declarations (``warpcall.routes``) and the ``rest`` channel."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from warpcall.routes import (
    Body,
    BodyMarker,
    ParamMarker,
    PathParam,
    PathParamMarker,
    QueryParam,
    QueryParamMarker,
    delete,
    get,
    patch,
    post,
    put,
    rest,
)

if TYPE_CHECKING:
    from warpcall.channels.rest import RestChannel

__all__ = [
    "Body",
    "BodyMarker",
    "ParamMarker",
    "PathParam",
    "PathParamMarker",
    "QueryParam",
    "QueryParamMarker",
    "RestChannel",
    "delete",
    "get",
    "patch",
    "post",
    "put",
    "rest",
]


def __getattr__(name: str) -> Any:
    # the channel loads the HTTP clients: only when the name is used (declaring routes needs none)
    if name == "RestChannel":
        from warpcall.channels.rest import RestChannel

        return RestChannel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
