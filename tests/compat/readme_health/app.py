"""The aspyx-service README's "Health Checks" as a program: the README's `Checks` class, a component
serving `@health("/health")` and one overriding `get_health()`.

Changed: the import lines; host "0.0.0.0" -> "127.0.0.1", port 8000 -> 0. Filled in where the README
is incomplete, each marked "README:".
"""

import time
from abc import abstractmethod

from fastapi import FastAPI

from warpcall import (
    AbstractComponent,
    ChannelAddress,
    Component,
    ComponentRegistry,
    FastAPIServer,
    HealthCheckManager,
    HealthStatus,
    Server,
    Service,
    ServiceManager,
    ServiceModule,
    component,
    health,
    health_check,
    health_checks,
    implementation,
    service,
)
from warpcall.di import create, injectable, module

# README: the check bodies are `...`; these switches let the test make them slow or failing
STATE = {"slow_for": 0.0, "ok": True, "short_runs": []}


@health_checks()
@injectable()
class Checks:
    def __init__(self):
        pass #  normally, we would inject stuff here

    # checks

    @health_check(fail_if_slower_than=1)
    def check_performance(self, result: HealthCheckManager.Result):
        time.sleep(STATE["slow_for"])  # README: `...  # should be done in under a second`

    @health_check(name="check", cache=10)
    def check(self, result: HealthCheckManager.Result):
        ok = STATE["ok"]  # README: `ok = ...`
        # README: `result.set_status(if ok HealthStatus.OK else HealthStatus.ERROR)` is not Python
        result.set_status(HealthStatus.OK if ok else HealthStatus.ERROR)

    # README: not in the README; a check cached 0.5 s, so the test sees its cache expire within a second
    @health_check(name="short", cache=0.5)
    def short(self, result: HealthCheckManager.Result):
        STATE["short_runs"].append(time.monotonic())


@service(name="test-service", description="test service")
class TestService(Service):
    @abstractmethod
    def hello(self, message: str) -> str:
        pass

@component(name="test-component", services =[TestService])
class TestComponent(Component):
    pass

# README: "Every component can declare a HTTP health endpoint": @health(<endpoint>) and get_health()
@implementation()
@health("/health")
class TestComponentImpl(AbstractComponent, TestComponent):
    def __init__(self, health_check_manager: HealthCheckManager):
        super().__init__()
        self.health_check_manager = health_check_manager

    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("dispatch-json", f"http://{Server.get_local_ip()}:{port}")]

    # "let the system execute a number of configured checks and compute the overall result"
    async def get_health(self) -> HealthCheckManager.Health:
        return await self.health_check_manager.check()

@implementation()
class TestServiceImpl(TestService):
    def hello(self, message: str) -> str:
        return f"hello {message}"


@service(name="other-service", description="other service")
class OtherService(Service):
    @abstractmethod
    def ping(self) -> str:
        pass

@component(name="other-component", services =[OtherService])
class OtherComponent(Component):
    pass

# "While you can instantiate the Health class directly via HealthCheckManager.Health(HealtStatus.OK)"
@implementation()
@health("/other-health")
class OtherComponentImpl(AbstractComponent, OtherComponent):
    def get_addresses(self, port: int) -> list[ChannelAddress]:
        return [ChannelAddress("dispatch-json", f"http://{Server.get_local_ip()}:{port}")]

    async def get_health(self) -> HealthCheckManager.Health:
        return HealthCheckManager.Health(HealthStatus.OK)

@implementation()
class OtherServiceImpl(OtherService):
    def ping(self) -> str:
        return "pong"


fast_api = FastAPI()

@module(imports=[ServiceModule])
class Module:
    def __init__(self):
        pass

    @create()
    def create_server(self,  service_manager: ServiceManager, component_registry: ComponentRegistry) -> FastAPIServer:
        return FastAPIServer(fast_api, service_manager, component_registry)


environment = FastAPIServer.boot(Module, host="127.0.0.1", port=0)
