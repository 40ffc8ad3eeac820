"""Types of warpcall._native.proxy (compiled from ext/proxy.pyx); the pure twin is warpcall._pure.proxy."""

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

_T = TypeVar("_T")

class MethodDescriptor:
    """Everything about one service method that does not depend on a call's arguments (built once, cached)."""

    name: str
    qualified: str
    func: Callable[..., Any]
    is_async: bool
    signature: inspect.Signature
    param_names: tuple[str, ...]
    plans: dict[str, Any]
    def __init__(self, func: Callable[..., Any]) -> None: ...
    @classmethod
    def from_function(cls, func: Callable[..., Any]) -> MethodDescriptor: ...
    @property
    def param_types(self) -> tuple[Any, ...]: ...
    @property
    def return_type(self) -> Any: ...
    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None) -> tuple[Any, ...]: ...

class Invocation:
    """One call through a proxy: the method, the positional arguments, and the keywords (None when none)."""

    method: MethodDescriptor
    args: tuple[Any, ...]
    kwargs: dict[str, Any] | None
    def __init__(
        self, method: MethodDescriptor, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None
    ) -> None: ...
    def positional(self) -> tuple[Any, ...]: ...

def service_methods(service_type: type) -> dict[str, MethodDescriptor]: ...
def proxy_class(service_type: type[_T]) -> type[_T]: ...
def make_proxy(service_type: type[_T], channel: Any) -> _T: ...
