from warpcall.di import injectable, module  # noqa: F401
from wdi_cases.modules.shared import SharedClock, SharedModule  # noqa: F401 - SharedClock is used by the tests through this package


@module(imports=[SharedModule])
class AppModule:
    pass
