"""A call through a service proxy into a channel that does nothing, and binding a call's arguments."""

SETUP = """
try:
    from warpcall.core import proxy
except ImportError:
    from warpcall._native import proxy


class Service:
    def none(self) -> None: ...

    def one(self, a: int) -> None: ...

    def three(self, a: int, b: int, c: int = 3) -> None: ...


class NoOp:
    def invoke(self, invocation):
        return None

    async def invoke_async(self, invocation):
        return None


service = proxy.make_proxy(Service, NoOp())
call_none = service.none
call_one = service.one
call_three = service.three
bind = proxy.service_methods(Service)["three"].bind
Invocation = proxy.Invocation
three = proxy.service_methods(Service)["three"]
args3 = (1, 2, 3)
args2 = (1, 2)
args1 = (1,)
keywords = {"b": 2, "c": 3}
"""

CASES = {
    "call 0 args": "call_none()",
    "call 1 arg": "call_one(1)",
    "call 3 positional": "call_three(1, 2, 3)",
    "call 3 keyword": "call_three(a=1, b=2, c=3)",
    "call via attribute 1 arg": "service.one(1)",
    "bind all given": "bind(args3, None)",
    "bind with default": "bind(args2, None)",
    "bind keywords": "bind(args1, keywords)",
    "Invocation().positional()": "Invocation(three, args1, keywords).positional()",
}
