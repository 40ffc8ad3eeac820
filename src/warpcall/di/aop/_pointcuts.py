"""Pointcuts: which methods an advice method applies to.

``methods()`` and ``classes()`` start a fluent description; criteria of
different kinds must all hold, repeated criteria of one kind are
alternatives, and several pointcuts given to one decorator are alternatives.
"""

from __future__ import annotations

import inspect
import re
from typing import Any, Callable, Optional, Union

from warpcall.di._reflection import Decorators

Predicate = Callable[[Any], bool]


class AspectTarget:
    """Common fluent criteria of method and class pointcuts."""

    def __init__(self) -> None:
        self.names: list[tuple[str, Optional[re.Pattern[str]]]] = []
        self.patterns: list[re.Pattern[str]] = []
        self.predicates: list[Predicate] = []
        self.types: list[type] = []
        self.decorators: list[Callable[..., Any]] = []
        self._async: Optional[bool] = None
        self.other: list[AspectTarget] = []

    # fluent

    def named(self, name: str) -> AspectTarget:
        """Match this name, or this regular expression over the whole name."""
        try:
            pattern: Optional[re.Pattern[str]] = re.compile(name)
        except re.error:
            pattern = None
        self.names.append((name, pattern))
        return self

    def matches(self, pattern: Union[str, Predicate]) -> AspectTarget:
        """Match a regular expression over the whole name, or a predicate called with the function
        (method pointcuts) or the class (class pointcuts)."""
        if isinstance(pattern, str):
            self.patterns.append(re.compile(pattern))
        else:
            self.predicates.append(pattern)
        return self

    def of_type(self, type: type) -> AspectTarget:
        """Match methods of this class and its subclasses."""
        self.types.append(type)
        return self

    def decorated_with(self, decorator: Callable[..., Any]) -> AspectTarget:
        """Match what carries this decorator (recorded with ``Decorators.add``)."""
        self.decorators.append(decorator)
        return self

    def that_are_async(self) -> AspectTarget:
        """Match ``async def`` methods only."""
        self._async = True
        return self

    def that_are_sync(self) -> AspectTarget:
        """Match sync methods only."""
        self._async = False
        return self

    # matching

    def _add(self, target: AspectTarget) -> AspectTarget:
        self.other.append(target)
        return self

    def _matches(self, cls: type, func: Callable[..., Any]) -> bool:
        return self._matches_self(cls, func) or any(target._matches(cls, func) for target in self.other)

    def _matches_self(self, cls: type, func: Callable[..., Any]) -> bool:
        raise NotImplementedError

    def _common(self, cls: type, func: Callable[..., Any], name: str, subject: Any) -> bool:
        if self._async is not None and self._async != inspect.iscoroutinefunction(func):
            return False
        if self.types and not any(issubclass(cls, t) for t in self.types):
            return False
        if self.decorators and not any(Decorators.has_decorator(subject, d) for d in self.decorators):
            return False
        if self.names and not any(
            name == wanted or (pattern is not None and pattern.fullmatch(name)) for wanted, pattern in self.names
        ):
            return False
        if self.patterns and not any(pattern.fullmatch(name) for pattern in self.patterns):
            return False
        return not self.predicates or any(predicate(subject) for predicate in self.predicates)


class MethodAspectTarget(AspectTarget):
    """A pointcut over methods: names, decorators and predicates look at the method."""

    def __init__(self) -> None:
        super().__init__()
        self.belonging_to: list[ClassAspectTarget] = []

    def declared_by(self, classes: ClassAspectTarget) -> MethodAspectTarget:
        """Only methods of classes matching ``classes``."""
        self.belonging_to.append(classes)
        return self

    def _matches_self(self, cls: type, func: Callable[..., Any]) -> bool:
        if self.belonging_to and not any(target._matches(cls, func) for target in self.belonging_to):
            return False
        return self._common(cls, func, func.__name__, func)


class ClassAspectTarget(AspectTarget):
    """A pointcut over classes: every method of a matching class; names, decorators and predicates look at the class."""

    def _matches_self(self, cls: type, func: Callable[..., Any]) -> bool:
        return self._common(cls, func, cls.__name__, cls)


def methods() -> MethodAspectTarget:
    """Start a method pointcut."""
    return MethodAspectTarget()


def classes() -> ClassAspectTarget:
    """Start a class pointcut."""
    return ClassAspectTarget()
