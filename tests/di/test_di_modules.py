"""Module discovery by package, imports, features and class conditions."""

from __future__ import annotations

import pytest

from warpcall.di import Environment, conditional, injectable, module, requires_class, requires_feature


def test_a_module_manages_its_package_and_its_imports() -> None:
    from wdi_cases.modules.app import AppModule
    from wdi_cases.modules.shared import SharedClock

    env = Environment(AppModule)
    from wdi_cases.modules.app.services import Greeter  # imported by the environment, not by this test first

    greeter = env.get(Greeter)
    assert greeter.clock is env.get(SharedClock)
    env.destroy()


def test_a_sibling_package_with_a_longer_name_is_not_included() -> None:
    from wdi_cases.modules.app import AppModule
    from wdi_cases.modules.app_two import Intruder

    env = Environment(AppModule)
    assert not env.has_provider(Intruder)
    env.destroy()


def test_imported_module_does_not_see_the_importer() -> None:
    from wdi_cases.modules.app.services import Greeter
    from wdi_cases.modules.shared import SharedModule

    env = Environment(SharedModule)
    assert not env.has_provider(Greeter)
    env.destroy()


class Metrics:
    pass


@injectable()
@conditional(requires_feature("dev"))
class DevTools:
    pass


@injectable()
class Prometheus(Metrics):
    pass


@injectable()
@conditional(requires_class(Metrics))
class MetricsExporter:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics


@injectable()
@conditional(requires_class(DevTools))
class DevDashboard:
    pass


@module()
class FeatureModule:
    pass


@pytest.mark.parametrize("features, expected", [([], False), (["dev"], True)])
def test_feature_conditions(features: list[str], expected: bool) -> None:
    env = Environment(FeatureModule, features=features)
    assert env.has_provider(DevTools) is expected
    assert env.has_provider(DevDashboard) is expected  # a class condition on a conditional class
    assert env.has_feature("dev") is expected
    env.destroy()


def test_class_condition_met_through_a_base_class() -> None:
    env = Environment(FeatureModule)
    assert isinstance(env.get(MetricsExporter).metrics, Prometheus)
    env.destroy()


def test_a_nested_module_is_active_only_when_imported() -> None:
    from wdi_cases.modules.app import AppModule
    from wdi_cases.modules.app.extra import ExtraModule, ExtraThing

    env = Environment(AppModule)
    assert not env.has_provider(ExtraModule)
    assert not env.has_provider(ExtraThing)
    env.destroy()
    nested = Environment(ExtraModule)
    assert isinstance(nested.get(ExtraThing), ExtraThing)
    nested.destroy()


def test_get_of_a_class_left_out_by_its_condition_says_why() -> None:
    from warpcall.di import UnmetConditionException

    env = Environment(FeatureModule)
    with pytest.raises(UnmetConditionException, match="requires_feature\\('dev'\\) is not met: pass features=\\['dev'\\]"):
        env.get(DevTools)
    env.destroy()


def test_scanning_imports_the_package_but_skips_opted_out_subpackages() -> None:
    import sys

    from wdi_cases.scan import ScanModule

    env = Environment(ScanModule)
    assert "wdi_cases.scan.visible" in sys.modules
    assert "wdi_cases.scan.hidden.impl" not in sys.modules
    from wdi_cases.scan.visible import Visible

    assert env.has_provider(Visible)
    env.destroy()
