"""A module whose package holds a subpackage that opts out of scanning."""
from warpcall.di import module


@module()
class ScanModule:
    pass
