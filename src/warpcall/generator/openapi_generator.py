"""The OpenAPI document of services' REST routes, as the server would serve them.

The routes are mounted on a FastAPI application of their own, exactly as ``FastAPIServer``
mounts them (``warpcall.server.rest.mount_routes``), and FastAPI writes the document; the
application is never served. The services need no implementation in this process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.models import OpenAPI

from warpcall.generator._components import described_components

__all__ = ["OpenAPIGenerator"]


class OpenAPIGenerator:
    """Writes the OpenAPI document of the ``@rest`` services of the described components."""

    def __init__(
        self,
        service_manager: Any,
        *,
        components: Sequence[type] | None = None,
        title: str = "warpcall services",
        version: str = "1.0.0",
    ) -> None:
        self.service_manager = service_manager
        self.components = components
        self.title = title
        self.version = version

    def application(self) -> FastAPI:
        """A FastAPI application holding the routes (for documentation only: its endpoints call nothing)."""
        from warpcall.server.rest import mount_routes

        app = FastAPI(title=self.title, version=self.version)
        for component in described_components(self.service_manager, self.components):
            for service in component.services:
                # the service class stands in for the implementation: the document reads its methods'
                # signatures and docstrings only, and the application is never served
                mount_routes(app, component, service, service.type)
        return app

    def generate(self) -> OpenAPI:
        """The document as FastAPI's OpenAPI model."""
        return OpenAPI.model_validate(self.application().openapi())

    def to_json(self, indent: int = 2) -> str:
        """The document as JSON text (unset fields left out)."""
        return self.generate().model_dump_json(indent=indent, exclude_none=True, by_alias=True)
