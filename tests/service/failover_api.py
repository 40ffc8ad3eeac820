"""The service the failover tests call on three instances, each a process of its own (failover_server.py)."""

from __future__ import annotations

from abc import abstractmethod

from warpcall import Component, Service, component, get, rest, service

CHANNELS = ["dispatch-json", "dispatch-msgpack", "dispatch-protobuf", "rest"]


@service(name="failover-pid")
@rest("/failover")
class PidService(Service):
    @get("/pid")
    @abstractmethod
    def pid(self) -> int:
        """The serving process's id."""

    @get("/pid-async")
    @abstractmethod
    async def pid_async(self) -> int:
        """The serving process's id, from an async method."""

    @get("/crash")
    @abstractmethod
    def crash(self) -> int:
        """Ends the serving process at once, the request read and unanswered."""

    @get("/crash-async")
    @abstractmethod
    async def crash_async(self) -> int:
        """:meth:`crash` from an async method."""


@component(name="failover-shop", services=[PidService])
class FailoverShop(Component):
    pass
