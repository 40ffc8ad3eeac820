"""Dependency injection for warpcall, with the decorator API of ``aspyx.di``.

``@module()`` marks a module, ``@injectable()`` / ``@factory()`` / ``@create()``
register what an ``Environment(Module)`` builds, ``@inject()`` /
``@inject_environment()`` / ``@on_init()`` / ``@on_running()`` / ``@on_destroy()``
hook into an instance's lifecycle, ``@conditional(...)`` filters by feature,
class or configuration. Advice lives in ``warpcall.di.aop``, configuration in
``warpcall.di.configuration``.
"""

from warpcall.di._conditions import (
    Condition,
    conditional,
    requires_class,
    requires_configuration,
    requires_configuration_value,
    requires_feature,
)
from warpcall.di._decorators import create, factory, injectable, module
from warpcall.di._environment import Environment
from warpcall.di._errors import (
    AmbiguousProviderException,
    AOPException,
    ConfigurationException,
    CyclicDependencyException,
    DIException,
    DIRegistrationException,
    DIRuntimeException,
    MissingProviderException,
    ProviderCollisionException,
    UnknownScopeException,
    UnmetConditionException,
)
from warpcall.di._lifecycle import (
    AbstractCallableProcessor,
    Lifecycle,
    LifecycleCallable,
    LifecycleProcessor,
    PostProcessor,
    inject,
    inject_environment,
    on_destroy,
    on_init,
    on_running,
    order,
)
from warpcall.di._providers import (
    AbstractInstanceProvider,
    AnnotationResolver,
    AnnotationResolvers,
    ClassInstanceProvider,
    Factory,
    FactoryInstanceProvider,
    FunctionInstanceProvider,
    InstanceProvider,
    Providers,
)
from warpcall.di._reflection import DecoratorDescriptor, Decorators, MethodDescriptor, TypeDescriptor
from warpcall.di._scopes import EnvironmentScope, RequestScope, Scope, SingletonScope, ThreadScope, scope

# the subpackages register the weaver, the configuration manager and @synchronized; every environment has them
from warpcall.di import aop as _aop  # noqa: E402,F401  isort: skip
from warpcall.di import configuration as _configuration  # noqa: E402,F401  isort: skip
from warpcall.di import threading as _threading  # noqa: E402,F401  isort: skip

__all__ = [
    "AOPException",
    "AbstractCallableProcessor",
    "AbstractInstanceProvider",
    "AmbiguousProviderException",
    "AnnotationResolver",
    "AnnotationResolvers",
    "ClassInstanceProvider",
    "Condition",
    "ConfigurationException",
    "CyclicDependencyException",
    "DIException",
    "DIRegistrationException",
    "DIRuntimeException",
    "DecoratorDescriptor",
    "Decorators",
    "Environment",
    "EnvironmentScope",
    "Factory",
    "FactoryInstanceProvider",
    "FunctionInstanceProvider",
    "InstanceProvider",
    "Lifecycle",
    "LifecycleCallable",
    "LifecycleProcessor",
    "MethodDescriptor",
    "MissingProviderException",
    "PostProcessor",
    "ProviderCollisionException",
    "Providers",
    "RequestScope",
    "Scope",
    "SingletonScope",
    "ThreadScope",
    "TypeDescriptor",
    "UnknownScopeException",
    "UnmetConditionException",
    "conditional",
    "create",
    "factory",
    "inject",
    "inject_environment",
    "injectable",
    "module",
    "on_destroy",
    "on_init",
    "on_running",
    "order",
    "requires_class",
    "requires_configuration",
    "requires_configuration_value",
    "requires_feature",
    "scope",
]
