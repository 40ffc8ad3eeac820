"""The service every chaos test calls, on instances that are processes of their own (chaos_server.py)."""

from __future__ import annotations

from abc import abstractmethod

from warpcall import Component, Service, component, idempotent, service

COMPONENT = "chaos-echo"


@service(name="chaos-echo-service")
class EchoService(Service):
    @idempotent
    @abstractmethod
    def echo(self, n: int) -> int:
        """``n`` back (running it twice does no harm)."""

    @idempotent
    @abstractmethod
    def pid(self) -> int:
        """The process id of the instance that served the call."""

    @abstractmethod
    def hold(self, n: int, seconds: float) -> int:
        """Record that call ``n`` started (in the server's starts file), sleep ``seconds``, return ``n``."""


@component(name=COMPONENT, services=[EchoService])
class EchoComponent(Component):
    pass
