"""Every build error is a DIException subclass, raised by Environment(...) with a message a user can act on."""

from __future__ import annotations

import importlib
import re

import pytest

from warpcall.di import (
    AmbiguousProviderException,
    AOPException,
    ConfigurationException,
    CyclicDependencyException,
    DIException,
    DIRegistrationException,
    Environment,
    MissingProviderException,
    ProviderCollisionException,
    UnknownScopeException,
    UnmetConditionException,
)
from warpcall.exceptions import WarpcallError


def build(package: str, module_name: str) -> Environment:
    scenario = importlib.import_module(f"wdi_cases.{package}")
    return Environment(getattr(scenario, module_name))


def test_every_container_error_is_a_di_exception_and_a_warpcall_error() -> None:
    for error in (
        AmbiguousProviderException, AOPException, ConfigurationException, CyclicDependencyException,
        MissingProviderException, ProviderCollisionException, UnknownScopeException, UnmetConditionException,
    ):
        assert issubclass(error, DIException)
    assert issubclass(DIException, WarpcallError)


def test_a_cycle_names_the_whole_cycle() -> None:
    with pytest.raises(CyclicDependencyException) as caught:
        build("cycle", "CycleModule")
    message = str(caught.value)
    cycle = re.search(r"dependency cycle: (\S+ -> \S+ -> \S+ -> \S+)", message)
    assert cycle is not None, message
    names = cycle.group(1).split(" -> ")
    assert names[0] == names[-1]
    assert set(names) == {"Alpha", "Beta", "Gamma"}
    assert "parameter" in message


def test_a_cycle_through_an_inject_setter_is_found_at_build() -> None:
    with pytest.raises(CyclicDependencyException) as caught:
        build("cycle_setter", "SetterCycleModule")
    message = str(caught.value)
    assert "Left" in message and "Right" in message
    assert "Right.set_left parameter 'left'" in message


def test_a_missing_provider_names_the_type_and_who_asked() -> None:
    with pytest.raises(MissingProviderException) as caught:
        build("missing", "MissingModule")
    message = str(caught.value)
    assert "no provider for Database" in message
    assert "required by Repository.__init__ parameter 'database'" in message
    assert "MissingModule" in message


def test_two_providers_of_one_type_name_both() -> None:
    with pytest.raises(ProviderCollisionException) as caught:
        build("collision", "CollisionModule")
    message = str(caught.value)
    assert "two providers for Clock" in message
    assert "Clock.__init__" in message
    assert "CollisionModule.make_clock() -> Clock" in message


def test_a_dependency_on_an_ambiguous_base_names_both_implementations() -> None:
    with pytest.raises(AmbiguousProviderException) as caught:
        build("ambiguous", "AmbiguousModule")
    message = str(caught.value)
    assert "Store" in message
    assert "MemoryStore" in message and "DiskStore" in message
    assert "Cache.__init__ parameter 'store'" in message


def test_get_of_an_ambiguous_base_names_both_implementations() -> None:
    environment = build("two_impls", "TwoImplsModule")
    with pytest.raises(AmbiguousProviderException) as caught:
        environment.get(importlib.import_module("wdi_cases.two_impls").Codec)
    message = str(caught.value)
    assert "JsonCodec" in message and "MsgpackCodec" in message
    assert not environment.has_provider(importlib.import_module("wdi_cases.two_impls").Codec)


def test_an_unknown_scope_is_named_with_the_known_ones() -> None:
    with pytest.raises(UnknownScopeException) as caught:
        build("unknown_scope", "UnknownScopeModule")
    message = str(caught.value)
    assert "unknown scope 'sesion'" in message
    assert "Cart declares the unknown scope" in message
    assert "singleton" in message and "request" in message


def test_a_condition_on_a_missing_class_is_explained_to_the_dependent() -> None:
    with pytest.raises(UnmetConditionException) as caught:
        build("unmet_condition", "UnmetConditionModule")
    message = str(caught.value)
    assert "no provider for RedisCache" in message
    assert "required by Sessions.__init__ parameter 'cache'" in message
    assert "requires_class(Redis)" in message
    assert "Redis has no provider" in message


def test_a_configuration_value_of_the_wrong_type_fails_the_build() -> None:
    with pytest.raises(ConfigurationException) as caught:
        build("bad_config", "BadConfigModule")
    message = str(caught.value)
    assert "'server.port'" in message
    assert "'eighty'" in message
    assert "cannot be converted to int" in message
    assert "Server.set_port" in message


def test_an_async_on_init_is_refused_at_build() -> None:
    with pytest.raises(DIRegistrationException) as caught:
        build("async_init", "AsyncInitModule")
    message = str(caught.value)
    assert "Connection.open is async" in message
    assert "@on_running" in message


def test_async_advice_around_a_sync_method_is_refused_at_build() -> None:
    with pytest.raises(AOPException) as caught:
        build("async_advice_sync_method", "AsyncAdviceModule")
    message = str(caught.value)
    assert "AsyncAudit.audit" in message and "Ledger.book" in message


def test_a_class_without_module_decorator_is_refused() -> None:
    class NotAModule:
        pass

    with pytest.raises(DIRegistrationException, match="NotAModule is not a module"):
        Environment(NotAModule)


def test_get_of_an_unknown_type_names_it() -> None:
    environment = build("modules.shared", "SharedModule")

    class Unregistered:
        pass

    with pytest.raises(MissingProviderException, match="no provider for .*Unregistered, required by Environment.get"):
        environment.get(Unregistered)


def test_advice_methods_must_take_the_invocation() -> None:
    from warpcall.di.aop import advice, before, methods

    with pytest.raises(AOPException, match="Wrong.check must take exactly one parameter"):
        @advice
        class Wrong:
            @before(methods().named("x"))
            def check(self) -> None:
                pass
