from warpcall.di import injectable


@injectable()
class Hidden:
    pass
