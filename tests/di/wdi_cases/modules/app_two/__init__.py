"""A package whose name starts like 'app': its injectables must not leak into AppModule."""
from warpcall.di import injectable, module


@injectable()
class Intruder:
    pass


@module()
class AppTwoModule:
    pass
