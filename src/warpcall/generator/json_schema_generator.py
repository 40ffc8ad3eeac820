"""A JSON Schema service descriptor: every service's methods with their parameters and results as JSON Schema.

Meant for framework-agnostic discovery and handshakes between systems: the types are
described as pydantic describes them (dataclasses, models, enums, containers, dates),
shared definitions under ``$defs``, referenced as ``#/$defs/<name>``.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from typing import Annotated, Any, get_args, get_origin, get_type_hints

from pydantic import TypeAdapter

from warpcall.generator._components import described_components
from warpcall.routes import ParamMarker
from warpcall.service import ServiceDescriptor

__all__ = ["JSONSchemaGenerator"]

_REF = "#/$defs/{model}"


def _marker_default(tp: Any) -> bool:
    """True when a ``Body``/``QueryParam`` marker gives the parameter a default."""
    if get_origin(tp) is not Annotated:
        return False
    return any(isinstance(meta, ParamMarker) and not meta.required for meta in get_args(tp)[1:])


class JSONSchemaGenerator:
    """Describes services as ``{"schemaVersion", "services": {name: {...}}, "$defs": {...}}``.

    Each service: ``name``, ``type`` (class name), ``description`` (docstring) and ``methods``; each method:
    ``description``, ``parameters`` (an object schema: ``properties`` per parameter, ``required`` those
    without a default) and ``returns`` (``{"type": "null"}`` for None).
    """

    SCHEMA_VERSION = "1.0.0"

    def __init__(self, service_manager: Any, *, components: Sequence[type] | None = None) -> None:
        self.service_manager = service_manager
        self.components = components
        #: the shared definitions collected so far, by name
        self.type_defs: dict[str, Any] = {}

    def schema_of(self, tp: Any) -> dict[str, Any]:
        """The JSON Schema of a parameter or result type; its named definitions go to ``type_defs``."""
        if tp is None or tp is type(None):
            return {"type": "null"}
        if tp is inspect.Parameter.empty or tp is Any:
            return {}
        # as the item of a list, so that a model at the top is a definition too (pydantic inlines a top-level one)
        listed: dict[str, Any] = TypeAdapter(list[tp]).json_schema(ref_template=_REF)
        self.type_defs.update(listed.pop("$defs", {}))
        schema: dict[str, Any] = listed["items"]
        return schema

    def describe_service(self, service: ServiceDescriptor) -> dict[str, Any]:
        """One service's entry."""
        methods: dict[str, Any] = {}
        for name, method in service.qualify().items():
            parameters: dict[str, Any] = {"type": "object", "properties": {}}
            required = []
            # with their Body/QueryParam markers, which may give a default (the method descriptor strips them)
            hints = get_type_hints(method.func, include_extras=True)
            for param in list(method.signature.parameters.values())[1:]:
                tp = hints.get(param.name, Any)
                parameters["properties"][param.name] = self.schema_of(tp)
                if param.default is inspect.Parameter.empty and not _marker_default(tp):
                    required.append(param.name)
            if required:
                parameters["required"] = required
            methods[name] = {
                "description": inspect.getdoc(method.func) or "",
                "parameters": parameters,
                "returns": self.schema_of(method.return_type),
            }
        return {
            "name": service.name,
            "type": service.type.__name__,
            "description": inspect.getdoc(service.type) or "",
            "methods": methods,
        }

    def generate(self) -> dict[str, Any]:
        """The descriptor of every described component's services."""
        self.type_defs = {}
        services = {
            service.name: self.describe_service(service)
            for component in described_components(self.service_manager, self.components)
            for service in component.services
        }
        return {"schemaVersion": self.SCHEMA_VERSION, "services": services, "$defs": dict(self.type_defs)}

    def to_json(self, indent: int = 2) -> str:
        """:meth:`generate` as JSON text."""
        return json.dumps(self.generate(), indent=indent)
