"""An injectable with a scope nobody declared."""
from warpcall.di import injectable, module


@injectable(scope="sesion")
class Cart:
    pass


@module()
class UnknownScopeModule:
    pass
