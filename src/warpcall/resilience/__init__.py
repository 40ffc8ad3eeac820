"""Calls that survive failure: deadlines, failover and retries, circuit breakers, bulkheads.

Each part is a module of its own; the call path only reaches into them when a call fails or
when the part is configured, so a plain call pays nothing for what it does not use.
"""
