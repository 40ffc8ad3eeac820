"""aspyx-service's ``restchannel`` module: REST declarations (``warpcall.routes``) and the ``rest`` channel."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
else:
    from warpcall._lazy import export_lazily

    # the channel loads the HTTP clients: only when the name is used (declaring routes needs none)
    __getattr__, __dir__ = export_lazily(__name__, {"RestChannel": "warpcall.channels.rest"})

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
