"""Scenario packages for the DI tests: each subpackage is one @module with exactly its own injectables."""
