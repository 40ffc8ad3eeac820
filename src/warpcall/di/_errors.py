"""The exceptions of the container, all below ``DIException``.

::

    DIException                          (a WarpcallError)
    ├── DIRegistrationException          the environment cannot be built
    │   ├── ProviderCollisionException   two providers for one type
    │   ├── AmbiguousProviderException   a base class with several implementations
    │   ├── MissingProviderException     a dependency nobody provides
    │   │   └── UnmetConditionException  ...because its @conditional is not met
    │   ├── CyclicDependencyException    the whole cycle is in the message
    │   └── UnknownScopeException        a scope name nobody declared
    ├── DIRuntimeException               a lookup after the build went wrong
    ├── ConfigurationException           a configuration value is missing or of the wrong type
    └── AOPException                     advice that cannot be woven
"""

from __future__ import annotations

from warpcall.exceptions import WarpcallError


class DIException(WarpcallError):
    """Root of the container's exceptions."""


class DIRegistrationException(DIException):
    """The environment cannot be built from its modules."""


class ProviderCollisionException(DIRegistrationException):
    """Two providers create the same type."""


class AmbiguousProviderException(DIRegistrationException):
    """A base class is implemented by several injectables, so a lookup of it has no single answer."""


class MissingProviderException(DIRegistrationException):
    """A type is needed but no provider in the environment creates it."""


class UnmetConditionException(MissingProviderException):
    """A type is needed, but its injectable was left out because its ``@conditional`` is not met."""


class CyclicDependencyException(DIRegistrationException):
    """Providers depend on each other in a cycle."""


class UnknownScopeException(DIRegistrationException):
    """An injectable names a scope that no ``@scope`` class declares."""


class DIRuntimeException(DIException):
    """A lookup or lifecycle call failed after the environment was built."""


class ConfigurationException(DIException):
    """A configuration value is missing, unreadable or cannot be converted to the requested type."""


class AOPException(DIException):
    """Advice that cannot be applied as written."""
