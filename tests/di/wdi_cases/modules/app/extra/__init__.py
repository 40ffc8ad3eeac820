"""A module nested in AppModule's package: active only where imported, so its @create does not leak."""
from warpcall.di import create, module


class ExtraThing:
    pass


@module()
class ExtraModule:
    @create()
    def thing(self) -> ExtraThing:
        return ExtraThing()
