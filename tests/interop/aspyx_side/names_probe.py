"""How aspyx-service names what is declared without a name: ``python names_probe.py ClassName...``.

For each class name, a service and a component of that name are declared with aspyx's own decorators
and no name; prints one line ``RESULT <json>``: class name -> {"to_snake_case", "service", "component"}.
"""

import json
import sys

from aspyx_service import Component, Service, ServiceManager, component, service
from aspyx_service.service import to_snake_case


def main() -> int:
    results = {}
    for name in sys.argv[1:]:
        declared_service = service()(type(name, (Service,), {}))
        declared_component = component(services=[declared_service])(type(name, (Component,), {}))
        results[name] = {
            "to_snake_case": to_snake_case(name),
            "service": ServiceManager.get_descriptor(declared_service).name,
            "component": ServiceManager.get_descriptor(declared_component).name,
        }
    print("RESULT " + json.dumps(results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
