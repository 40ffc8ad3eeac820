"""aspyx-service's ``healthcheck`` module: health checks and their manager, defined in ``warpcall.health``."""

from __future__ import annotations

from warpcall.health import HealthCheckManager, HealthStatus, health_check, health_checks

__all__ = ["HealthCheckManager", "HealthStatus", "health_check", "health_checks"]
