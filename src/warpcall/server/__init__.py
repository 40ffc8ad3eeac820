"""Serving components: FastAPIServer and the dispatch endpoint it mounts."""

from warpcall.server.dispatch import DispatchEndpoint
from warpcall.server.fastapi_server import FastAPIServer

__all__ = ["DispatchEndpoint", "FastAPIServer"]
