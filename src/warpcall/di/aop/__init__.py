"""Aspect-oriented advice for warpcall, with the API of ``aspyx.di.aop``.

An ``@advice`` class (injectable by that alone) holds methods decorated with
``@before``, ``@around``, ``@after`` or ``@error``, each bound to pointcuts
built with ``methods()`` / ``classes()``. Every instance an environment
creates gets the matching advice of that environment woven into its methods.
Each advice method receives the ``Invocation`` (``func``, ``args`` with
``self`` first, ``kwargs``, ``result``, ``exception``, ``proceed()``).
"""

from warpcall.di._errors import AOPException
from warpcall.di.aop._advice import AspectType, advice, after, around, before, error
from warpcall.di.aop._pointcuts import AspectTarget, ClassAspectTarget, MethodAspectTarget, classes, methods
from warpcall.di.aop._weaver import Weaver
from warpcall.di.weave import Invocation

#: the invocation of a woven method, as advice methods receive it

__all__ = [
    "AOPException",
    "AspectTarget",
    "AspectType",
    "ClassAspectTarget",
    "Invocation",
    "MethodAspectTarget",
    "Weaver",
    "advice",
    "after",
    "around",
    "before",
    "classes",
    "error",
    "methods",
]
