"""``Environment``: the container built from a ``@module``.

Building one picks the providers of the module's packages (and its imports'),
applies ``@conditional``, binds scopes, checks the whole dependency graph
(missing providers, ambiguities, cycles, unknown scopes, configuration values:
all reported here, not at a later call), creates the eager singletons and runs
``@on_running``. ``get`` of a created singleton is one dict lookup.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys
import threading
from typing import Any, Callable, Optional, TypeVar

from warpcall.di._bindings import Ambiguous, Binding, injectable_bases, missing, resolve, where
from warpcall.di._conditions import Condition, conditions_of
from warpcall.di._decorators import module
from warpcall.di._errors import DIRegistrationException, DIRuntimeException, ProviderCollisionException
from warpcall.di._lifecycle import (
    Lifecycle,
    LifecycleCallable,
    LifecyclePlan,
    LifecycleProcessor,
    builtin_callables,
    order_of,
)
from warpcall.di._providers import AbstractInstanceProvider, Providers, describe
from warpcall.di._reflection import Decorators
from warpcall.di.weave import InstanceCache

T = TypeVar("T")

#: set by warpcall.di.aop: makes the object that weaves advice into new instances of one environment
weaver_factory: Optional[Callable[[Environment], Any]] = None
#: base types created before everything else (configuration sources), set by warpcall.di.configuration
bootstrap_types: list[type] = []
#: checks run once the configuration is loaded, each given the environment and its own bindings
build_checks: list[Callable[[Environment, list[Binding]], None]] = []

_ALWAYS = "warpcall.di"


def _package_prefix(cls: type) -> str:
    """The ``__module__`` prefix a module class manages: its package, or its own module outside packages."""
    mod = sys.modules.get(cls.__module__)
    if mod is not None and hasattr(mod, "__path__"):
        return mod.__name__
    package = getattr(mod, "__package__", None) if mod is not None else None
    return package or cls.__module__


def _belongs(module_name: str, prefixes: list[str]) -> bool:
    return any(module_name == prefix or module_name.startswith(prefix + ".") for prefix in prefixes)


_imported: set[str] = set()


def _import_package(name: str) -> None:
    """Import every submodule of a package (once per process) so that its decorators have registered."""
    if name in _imported:
        return
    _imported.add(name)
    package = sys.modules.get(name) or importlib.import_module(name)
    if not hasattr(package, "__path__") or getattr(package, "__warpcall_scan__", True) is False:
        return
    # a subpackage setting __warpcall_scan__ = False (e.g. warpcall.demo) is only imported on request
    skipped: list[str] = []
    for info in pkgutil.walk_packages(package.__path__, prefix=name + ".", onerror=lambda _: None):
        if any(info.name.startswith(prefix) for prefix in skipped):
            continue
        if info.name not in sys.modules:
            try:
                importlib.import_module(info.name)
            except Exception as exc:  # a module that cannot import provides nothing; say so in the log
                Environment.logger.info("skipping %s: it does not import (%s)", info.name, exc)
                continue
        if info.ispkg and getattr(sys.modules.get(info.name), "__warpcall_scan__", True) is False:
            skipped.append(info.name + ".")


class Environment:
    """The container of one module: ``Environment(Module, features=[...], parent=None)``."""

    logger = logging.getLogger("warpcall.di")

    def __init__(self, env: type, features: Optional[list[str]] = None, parent: Optional[Environment] = None) -> None:
        self.type = env
        self.parent = parent
        self.features = list(features or [])
        self.lock = threading.RLock()
        self.instances: list[Any] = []
        self.lifecycle_processors: list[LifecycleProcessor] = []
        self._cache: dict[Any, Any] = {}
        self._bindings: dict[Any, Binding | Ambiguous] = {}
        self._own: list[Binding] = []
        self._excluded: dict[Any, Condition] = {}
        self._callables: dict[Any, LifecycleCallable] = {}
        self._plans: dict[type, LifecyclePlan] = {}
        self._modules: set[type] = set()
        self._running = False
        self._destroyed = False
        for callable_ in builtin_callables():
            self._callables[callable_.decorator] = callable_
        if parent is not None:
            self._callables.update(parent._callables)
            self._excluded.update(parent._excluded)
            self.lifecycle_processors.extend(parent.lifecycle_processors)
        self._weaver = weaver_factory(self) if weaver_factory is not None else None
        # the compiled cache answers get() of created singletons without running Python code
        self.get = InstanceCache(self._cache, self._get_slow).get  # type: ignore[method-assign,assignment]
        self._build()

    # building

    def _prefixes(self) -> list[str]:
        prefixes: list[str] = [] if self.parent is not None else [_ALWAYS]
        seen = self._modules

        def load(mod: type, importer: Optional[type]) -> None:
            if mod in seen:
                return
            seen.add(mod)
            decorator = Decorators.get_decorator(mod, module)
            if decorator is None:
                by = f", imported by {describe(importer)}" if importer is not None else ""
                raise DIRegistrationException(
                    f"{describe(mod)} is not a module{by}: decorate it with @module() to build an Environment from it"
                )
            for imported in decorator.args[0] or ():
                load(imported, mod)
            packages = decorator.args[1] if len(decorator.args) > 1 else None
            if packages is not None:
                for name in packages:
                    _import_package(name)
                prefixes.extend(packages)
                return
            prefix = _package_prefix(mod)
            if prefix != mod.__module__ or hasattr(sys.modules.get(prefix), "__path__"):
                _import_package(prefix)
            prefixes.append(prefix)

        load(self.type, None)
        return prefixes

    def _select(self, prefixes: list[str]) -> tuple[list[tuple[int, AbstractInstanceProvider[Any]]], list[Any]]:
        """Providers of this environment's packages whose scan and class conditions hold; the rest waits."""
        inherited = self._bindings
        chosen: list[tuple[int, AbstractInstanceProvider[Any]]] = []
        by_class: list[tuple[int, AbstractInstanceProvider[Any]]] = []
        by_config: list[tuple[int, AbstractInstanceProvider[Any]]] = []
        for seq, provider in enumerate(Providers.snapshot()):
            host = provider.get_host()
            if host not in self._modules:
                if not _belongs(provider.get_module(), prefixes):
                    continue
                if Decorators.has_decorator(host, module):
                    continue  # another module in the package (a demo, a sub-application) is active only when imported
            existing = inherited.get(provider.get_type())
            if isinstance(existing, Binding) and existing.provider is provider:
                continue  # inherited from the parent (re-bound here when its scope is "environment")
            conditions = conditions_of(provider.get_host())
            failed = next((c for c in conditions if c.phase == "scan" and not c.apply(self)), None)
            if failed is not None:
                self._excluded.setdefault(provider.get_type(), failed)
            elif any(c.phase == "configuration" for c in conditions):
                by_config.append((seq, provider))
            elif any(c.phase == "classes" for c in conditions):
                by_class.append((seq, provider))
            else:
                chosen.append((seq, provider))
        return chosen, [by_class, by_config]

    def _install(self, entries: list[tuple[int, AbstractInstanceProvider[Any]]]) -> list[Binding]:
        """Bind providers into the lookup table: exact types first, then base classes when unambiguous."""
        added: list[Binding] = []
        for seq, provider in entries:
            t = provider.get_type()
            current = self._bindings.get(t)
            if isinstance(current, Binding) and current.environment is self and current.type is t:
                raise ProviderCollisionException(
                    f"two providers for {describe(t)}: {where(current.provider)} and {where(provider)}; "
                    "remove one, or make one @conditional"
                )
            binding = Binding(self, provider, seq)
            self._bindings[t] = binding
            self._own.append(binding)
            added.append(binding)
        self._bind_bases()
        return added

    def _bind_bases(self) -> None:
        candidates: dict[Any, list[Binding]] = {}
        for binding in self._own:
            for base in injectable_bases(binding.type):
                candidates.setdefault(base, []).append(binding)
        for base, bindings in candidates.items():
            current = self._bindings.get(base)
            if isinstance(current, Binding) and current.type is base:
                continue  # an exact provider of the base wins over its subclasses
            self._bindings[base] = bindings[0] if len(bindings) == 1 else Ambiguous(base, bindings)

    def _inherit(self) -> None:
        if self.parent is None:
            return
        for t, binding in self.parent._bindings.items():
            if isinstance(binding, Binding) and binding.provider.get_scope() == "environment":
                own = Binding(self, binding.provider, binding.seq)
                self._bindings[t] = own
                self._own.append(own)
            else:
                self._bindings[t] = binding

    def _build(self) -> None:
        prefixes = self._prefixes()
        self._inherit()
        chosen, (by_class, by_config) = self._select(prefixes)
        self._install(chosen)
        # a class condition may depend on another conditional class: decide until nothing changes
        pending = by_class
        while pending:
            ready = [(seq, p) for seq, p in pending
                     if all(c.apply(self) for c in conditions_of(p.get_host()) if c.phase == "classes")]
            if not ready:
                break
            self._install(ready)
            pending = [entry for entry in pending if entry not in ready]
        for _, provider in pending:
            failed = next(c for c in conditions_of(provider.get_host()) if c.phase == "classes" and not c.apply(self))
            self._excluded.setdefault(provider.get_type(), failed)
        self._resolve_all()

        # configuration sources first: configuration conditions and values depend on them
        self._create_eager(lambda b: any(issubclass(b.type, base) for base in bootstrap_types))
        ready_by_config: list[tuple[int, AbstractInstanceProvider[Any]]] = []
        for seq, provider in by_config:
            unmet = next((c for c in conditions_of(provider.get_host()) if not c.apply(self)), None)
            if unmet is None:
                ready_by_config.append((seq, provider))
            else:
                self._excluded.setdefault(provider.get_type(), unmet)
        self._install(ready_by_config)
        self._resolve_all()
        for check in build_checks:
            check(self, self._own)

        # extensions of the lifecycle exist before the instances they extend, eager or not
        self._create_eager(lambda b: issubclass(b.type, LifecycleCallable), eager_only=False)
        self._create_eager(lambda b: issubclass(b.type, LifecycleProcessor), eager_only=False)
        self._create_eager(lambda b: Decorators.has_decorator(b.type, module))
        self._create_eager(lambda b: True)

        self._running = True
        for instance in list(self.instances):
            self._run_phase(Lifecycle.ON_RUNNING, instance, run_async=False)
        self.logger.debug("built %s with %d instances", self, len(self.instances))

    def _resolve_all(self) -> None:
        for binding in self._own:
            resolve(binding, self._bindings, self, self._excluded)

    def _create_eager(self, predicate: Callable[[Binding], bool], eager_only: bool = True) -> None:
        eager = [
            b for b in self._own
            if (b.provider.is_eager() or not eager_only) and b.caches and isinstance(b.type, type) and predicate(b)
        ]
        eager.sort(key=lambda b: (order_of(b.type), b.seq))
        for binding in eager:
            binding.instance()

    # lifecycle

    def _plan(self, cls: type) -> LifecyclePlan:
        plan = self._plans.get(cls)
        if plan is None:
            plan = LifecyclePlan(cls, self._callables)
            for call in plan.calls(Lifecycle.ON_INJECT) + plan.calls(Lifecycle.ON_INIT):
                if call.is_async:
                    raise DIRegistrationException(
                        f"{call.method.qualified()} is async, but @{call.decorator.decorator.__name__} methods run "
                        "while the instance is created and must be sync; use @on_running for async setup"
                    )
            self._plans[cls] = plan
        return plan

    def _add_callable(self, callable_: LifecycleCallable) -> None:
        self._callables[callable_.decorator] = callable_
        self._plans.clear()  # plans computed before it do not know its decorator

    def _run_phase(self, lifecycle: Lifecycle, instance: Any, run_async: bool) -> list[Any]:
        """Run processors and the instance's methods of one phase; returns coroutines of async methods."""
        pending = []
        for processor in self.lifecycle_processors:
            if processor is not instance:
                processor.process_lifecycle(lifecycle, instance, self)
        for call in self._plan(type(instance)).calls(lifecycle):
            outcome = call.call(instance, self)
            if call.is_async:
                if run_async:
                    pending.append(outcome)
                else:
                    outcome.close()  # not awaited here: start()/stop() run async lifecycle methods
        return pending

    def created(self, instance: T) -> T:
        """Run the lifecycle of a new instance (providers call this); returns the instance."""
        if isinstance(instance, LifecycleCallable):
            self._add_callable(instance)
        plan = self._plan(type(instance))
        for processor in self.lifecycle_processors:
            processor.process_lifecycle(Lifecycle.ON_INJECT, instance, self)
        for call in plan.calls(Lifecycle.ON_INJECT):
            call.call(instance, self)
        if self._weaver is not None:
            self._weaver.weave(instance)
        for processor in self.lifecycle_processors:
            processor.process_lifecycle(Lifecycle.ON_INIT, instance, self)
        for call in plan.calls(Lifecycle.ON_INIT):
            call.call(instance, self)
        if isinstance(instance, LifecycleProcessor):
            # replaced, not mutated, so that threads iterating the old list are not disturbed; a subclass
            # that skips LifecycleProcessor.__init__ has no order attribute, but its @order still counts
            self.lifecycle_processors = sorted(
                [*self.lifecycle_processors, instance],
                key=lambda processor: getattr(processor, "order", order_of(type(processor))),
            )
        if not self._running or plan.calls(Lifecycle.ON_DESTROY):
            with self.lock:
                self.instances.append(instance)
        if self._running:
            self._run_phase(Lifecycle.ON_RUNNING, instance, run_async=False)
        return instance

    # public

    def get(self, type: type[T]) -> T:
        """The instance of ``type`` (created now unless its scope caches one); raises a DIException when
        nothing provides it or several implementations make it ambiguous."""
        instance = self._cache.get(type)
        return instance if instance is not None else self._get_slow(type)

    def _get_slow(self, type: type[T]) -> T:
        binding = self._bindings.get(type)
        if binding is None:
            raise missing(type, "Environment.get", self, self._excluded)
        if isinstance(binding, Ambiguous):
            raise binding.error("Environment.get")
        instance: T = binding.instance()
        if binding.caches:
            self._cache[type] = instance
        return instance

    def read(self, type: type[T]) -> T:
        """Same as ``get``."""
        return self.get(type)

    def has_provider(self, type: Any) -> bool:
        """True when ``get(type)`` would find exactly one provider (own, inherited or by base class)."""
        return isinstance(self._bindings.get(type), Binding)

    is_registered_type = has_provider

    def registered_types(self, predicate: Callable[[Any], bool]) -> list[Any]:
        """Types of the providers this environment can use that satisfy ``predicate``."""
        seen: list[Any] = []
        for binding in self._bindings.values():
            if isinstance(binding, Binding) and binding.type not in seen and predicate(binding.type):
                seen.append(binding.type)
        return seen

    def has_feature(self, feature: str) -> bool:
        """True when the environment was created with ``feature``."""
        return feature in self.features

    async def start(self) -> None:
        """Await the ``async def`` ``@on_running`` methods of the instances created so far."""
        for instance in list(self.instances):
            for call in self._plan(type(instance)).calls(Lifecycle.ON_RUNNING):
                if call.is_async:
                    await call.call(instance, self)

    async def stop(self) -> None:
        """Destroy, awaiting ``async def`` ``@on_destroy`` methods."""
        for coroutine in self._destroy_sync():
            await coroutine

    def destroy(self) -> None:
        """Run ``@on_destroy`` of every instance in reverse creation order; async ones need ``await stop()``."""
        pending = self._destroy_sync()
        if not pending:
            return
        import asyncio  # only for async @on_destroy methods: building an environment does not load it

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            async def drain() -> None:
                for coroutine in pending:
                    await coroutine

            asyncio.run(drain())
            return
        for coroutine in pending:
            coroutine.close()
        raise DIRuntimeException(
            f"{self} has async @on_destroy methods and destroy() was called inside an event loop; "
            "use 'await environment.stop()' there"
        )

    def _destroy_sync(self) -> list[Any]:
        if self._destroyed:
            return []
        self._destroyed = True
        pending: list[Any] = []
        with self.lock:
            instances, self.instances = self.instances, []
        for instance in reversed(instances):
            pending.extend(self._run_phase(Lifecycle.ON_DESTROY, instance, run_async=True))
        self._cache.clear()
        return pending

    def report(self) -> str:
        """A readable summary: module, parent, processors, providers, instance counts."""
        lines = [f"Environment {describe(self.type)}" + (f" parent {describe(self.parent.type)}" if self.parent else "")]
        lines.append("Processors")
        lines.extend(f"- {type(processor).__name__}" for processor in self.lifecycle_processors)
        lines.append("Providers")
        for t, binding in self._bindings.items():
            if isinstance(binding, Binding) and binding.environment is self and binding.type is t:
                lines.append(f"- {describe(t)}: {binding.provider.report()} [{binding.provider.get_scope()}]")
        lines.append("Instances")
        counts: dict[str, int] = {}
        for instance in self.instances:
            counts[type(instance).__name__] = counts.get(type(instance).__name__, 0) + 1
        lines.extend(f"- {name}: {count}" for name, count in counts.items())
        return "\n".join(lines)

    @property
    def providers(self) -> dict[Any, Any]:
        """Lookup table type -> binding (read-only view for extensions)."""
        return dict(self._bindings)

    def __str__(self) -> str:
        return f"Environment({describe(self.type)})"

    __repr__ = __str__

