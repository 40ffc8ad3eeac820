"""The README's introduction: "After booting the DI infrastructure with a main module we could already
call a service", with its Consul based registry.

Changed: the import lines (aspyx_service -> warpcall, aspyx.di -> warpcall.di); Consul at
localhost:8500 -> the Consul emulator on 127.0.0.1 (its port from readme_support).
README: the imports of Consul and of the interface module are not shown; filled in.
"""

from consul import Consul
from readme_support import consul_port

from warpcall import ConsulComponentRegistry, Server, ServiceManager, ServiceModule
from warpcall.di import Environment, create, module

from .interface import TestService


@module(imports=[ServiceModule])
class Module:
    @create()
    def create_registry(self) -> ConsulComponentRegistry:
        return ConsulComponentRegistry(Server.port, Consul(host="127.0.0.1", port=consul_port()))  # a consul based registry!


environment = Environment(Module)
service_manager = environment.read(ServiceManager)

service = service_manager.get_service(TestService)

service.hello("world")
