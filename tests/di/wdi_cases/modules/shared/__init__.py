from warpcall.di import injectable, module


@injectable()
class SharedClock:
    pass


@module()
class SharedModule:
    pass
