"""Descriptions of services for other systems: a JSON Schema service descriptor and an OpenAPI document.

Both describe the services of the components an environment hosts (``ServiceManager.implemented_components()``),
or the ``@component`` classes passed as ``components=[...]``.
"""

from __future__ import annotations

from warpcall.generator.json_schema_generator import JSONSchemaGenerator
from warpcall.generator.openapi_generator import OpenAPIGenerator

__all__ = ["JSONSchemaGenerator", "OpenAPIGenerator"]
