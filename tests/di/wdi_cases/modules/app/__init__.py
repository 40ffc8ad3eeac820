from warpcall.di import injectable, module
from wdi_cases.modules.shared import SharedModule, SharedClock


@module(imports=[SharedModule])
class AppModule:
    pass
