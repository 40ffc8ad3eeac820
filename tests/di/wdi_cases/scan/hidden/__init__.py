"""Opted out: environments import this package's modules only when someone imports them by name."""
__warpcall_scan__ = False
