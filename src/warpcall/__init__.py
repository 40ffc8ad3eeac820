"""warpcall: declare a service once, call it in-process or over HTTP through a typed proxy."""

from warpcall._core import NATIVE

__version__ = "0.1.0"

__all__ = ["NATIVE", "__version__"]
