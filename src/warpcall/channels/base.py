"""The channel contract: how a proxy's invocation reaches an implementation, and the ``@channel`` declaration."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Callable, ClassVar, TypeVar

from warpcall.core import selector as url_selection
from warpcall.di import injectable
from warpcall.exceptions import ServiceException
from warpcall.registry.contract import ChannelInstances

if TYPE_CHECKING:
    from warpcall.service import ComponentDescriptor

C = TypeVar("C", bound="type[Channel]")


class Channel(ABC):
    """Carries invocations of one component's services over one transport.

    A channel instance serves one component; the registry pushes the URLs of
    that component's live instances into it with :meth:`set_address`, and its
    URL selector picks one per call.
    """

    URLSelector: ClassVar[type] = url_selection.URLSelector
    FirstURLSelector: ClassVar[type] = url_selection.FirstURLSelector
    RoundRobinURLSelector: ClassVar[type] = url_selection.RoundRobinURLSelector

    #: the channel name, set by ``@channel(name)``
    name: ClassVar[str] = ""

    def __init__(self) -> None:
        self.component_descriptor: ComponentDescriptor | None = None
        self.address: ChannelInstances | None = None
        # round robin by default, as aspyx-service channels start out
        self.selector: Any = self.RoundRobinURLSelector()

    def setup(self, component_descriptor: ComponentDescriptor, address: ChannelInstances | None) -> None:
        """Bind the channel to a component and its current URLs; called once, before :meth:`customize`."""
        self.component_descriptor = component_descriptor
        self.selector.owner = f"channel '{self.name}' of component '{component_descriptor.name}'"
        self.set_address(address)

    def customize(self) -> None:
        """Called once per channel instance after setup; the joinpoint for advice that configures channels."""

    def select_round_robin(self) -> None:
        """Spread calls over all known URLs in turn (the default)."""
        self._use_selector(self.RoundRobinURLSelector())

    def select_first_url(self) -> None:
        """Send every call to the first known URL."""
        self._use_selector(self.FirstURLSelector())

    def _use_selector(self, selector: Any) -> None:
        selector.owner = self.selector.owner
        selector.set_urls(self.selector.urls)
        self.selector = selector

    def get_url(self) -> str:
        """The base URL for the next call."""
        url: str = self.selector.select()
        return url

    def set_address(self, address: ChannelInstances | None) -> None:
        """Take a new URL list from the registry; the channel object stays the same."""
        self.address = address
        self.selector.set_urls(address.urls if address is not None else ())

    @abstractmethod
    def invoke(self, invocation: Any) -> Any:
        """Perform a sync call described by ``invocation`` (method descriptor, args, kwargs)."""

    @abstractmethod
    async def invoke_async(self, invocation: Any) -> Any:
        """Perform an async call described by ``invocation``."""

    def close(self) -> None:
        """Release connections; the channel is not used afterwards."""

    def __repr__(self) -> str:
        component = self.component_descriptor.name if self.component_descriptor else "?"
        return f"<{type(self).__name__} {self.name!r} of {component!r} urls={list(self.selector.urls)}>"


def channel_name(channel_type: Any) -> str:
    """The name ``@channel`` gave ``channel_type`` itself ('' for any other class, a subclass of a channel too)."""
    if isinstance(channel_type, type) and issubclass(channel_type, Channel):
        return str(vars(channel_type).get("name", ""))
    return ""


def channel(name: str) -> Callable[[C], C]:
    """Declare a :class:`Channel` subclass as the channel ``name``; an environment providing the class
    (through the module managing its package) creates one instance per component it calls."""

    def decorate(cls: C) -> C:
        if not (isinstance(cls, type) and issubclass(cls, Channel)):
            raise ServiceException(f"@channel('{name}') needs a subclass of warpcall.Channel, got {cls!r}")
        if name == "local":
            raise ServiceException("the channel name 'local' is reserved for in-process calls")
        cls.name = name
        return injectable(scope="request")(cls)

    return decorate
