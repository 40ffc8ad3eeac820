"""warpcall.reflection against aspyx.reflection (aspyx 1.9.8, in aspyx-service 0.11.6's own venv): the same
program, importing one or the other, describes the same classes the same way; and warpcall's service
proxies hand their channels DynamicProxy.Invocations."""

from __future__ import annotations

import json
import subprocess
import sys

from aspyx_venv import ensure_aspyx_python, isolated_env
from warpcall.core import proxy as core_proxy
from warpcall.reflection import Decorators, DynamicProxy

PROGRAM = r'''
import asyncio, dataclasses, json
from typing import Annotated, Optional
from {package} import Decorators, DecoratorDescriptor, DynamicProxy, TypeDescriptor

def marked(*args, **kwargs):
    def decorate(target):
        Decorators.add(target, marked, *args, **kwargs)
        return target
    return decorate

def other(target):
    Decorators.add(target, other)
    return target

@marked("base")
class Base:
    @marked(1, key="v")
    def inherited(self, a: int, b: "str" = "x") -> Optional[int]:
        "doc of inherited"

    def replaced(self) -> None: ...

@other
class Child(Base):
    def __init__(self, name: str, size: int = 3):
        self.name, self.size = name, size

    def replaced(self, flag: bool) -> "Child": ...

    async def later(self, value: Annotated[int, "meta"], text: str = "t") -> list[str]: ...

    def unresolvable(self, thing: "DoesNotExist") -> int: ...

@dataclasses.dataclass
class Point:
    x: int
    y: float = 1.5

def name(t):
    return getattr(t, "__name__", None) if isinstance(t, type) else str(t)

def method(m):
    return {{
        "name": m.get_name(), "clazz": m.clazz.__name__, "async": m.is_async(), "doc": m.get_doc("-"),
        "params": [(p.name, name(p.type)) for p in m.params], "param_types": [name(t) for t in m.param_types],
        "return": name(m.return_type), "decorators": [str(d) for d in m.decorators],
        "has_marked": m.has_decorator(marked), "marked": str(m.get_decorator(marked)),
        "annotated": [(p.name, name(p.type), [str(x) for x in p.metadata], p.has_default) for p in m.get_annotated_params()],
    }}

child = TypeDescriptor.for_type(Child)
out = {{
    "same": TypeDescriptor.for_type(Child) is child,
    "methods": sorted(m.get_name() for m in child.get_methods()),
    "local": sorted(m.get_name() for m in child.get_methods(local=True)),
    "described": {{m.get_name(): method(m) for m in child.get_methods()}},
    "get_method": child.get_method("inherited").clazz.__name__, "missing": child.get_method("nope"),
    "local_inherited": child.get_method("inherited", local=True),
    "class_decorators": [str(d) for d in child.decorators], "has_other": child.has_decorator(other),
    "has_marked": child.has_decorator(marked),
    "own": [str(d) for d in Decorators.get(Child)], "all_child": [str(d) for d in Decorators.get_all(Child)],
    "get_decorator_inherited": str(Decorators.get_decorator(Child, marked)),
    "has_decorator_inherited": Decorators.has_decorator(Child, marked),
    "constructor": [(p.name, name(p.type)) for p in child.constructor_parameters()],
    "properties": [(p.name, name(p.type), p.default) for p in child.get_properties()],
    "point": [(p.name, name(p.type), p.default) for p in TypeDescriptor.for_type(Point).get_properties()],
    "descriptor": str(DecoratorDescriptor(marked, 1, key=2)),
}}

class Handler(DynamicProxy.InvocationHandler):
    def invoke(self, invocation):
        return [invocation.type.__name__, invocation.method.__name__, list(invocation.args), invocation.kwargs]
    async def invoke_async(self, invocation):
        return ["async", invocation.method.__name__, list(invocation.args), invocation.kwargs]

proxy = DynamicProxy.create(Child, Handler())
out["proxy"] = [proxy.replaced(True), proxy.inherited(1, b="y"), asyncio.run(proxy.later(2))]
out["invocation"] = [isinstance(DynamicProxy.Invocation(Child, Child.replaced, 1), DynamicProxy.Invocation)]
print(json.dumps(out, default=str))
'''


def describe(python: str, package: str, env: dict[str, str] | None = None) -> dict[str, object]:
    done = subprocess.run(
        [python, "-c", PROGRAM.format(package=package)], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_warpcall_reflection_describes_classes_as_aspyx_reflection_does() -> None:
    theirs = describe(str(ensure_aspyx_python()), "aspyx.reflection", isolated_env())
    ours = describe(sys.executable, "warpcall.reflection")
    assert ours == theirs


def test_service_proxy_invocations_are_dynamic_proxy_invocations() -> None:
    class Greeter:
        def hello(self, name: str) -> str: ...

    seen = []

    class Channel:
        def invoke(self, invocation):
            seen.append(invocation)
            return "hi"

        async def invoke_async(self, invocation): ...

    assert core_proxy.make_proxy(Greeter, Channel()).hello("ann") == "hi"
    (invocation,) = seen
    assert isinstance(invocation, DynamicProxy.Invocation)
    assert (invocation.type, invocation.method, invocation.args, invocation.kwargs) == (Greeter, Greeter.hello, ("ann",), {})


def test_decorators_are_the_containers_records() -> None:
    from warpcall.di import Decorators as ContainerDecorators

    class Target: ...

    Decorators.add(Target, test_decorators_are_the_containers_records, 1)
    assert ContainerDecorators.has_decorator(Target, test_decorators_are_the_containers_records)
