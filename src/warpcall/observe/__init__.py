"""Observability: per-call phase records, the profiler, traces and metrics (issue #17)."""
