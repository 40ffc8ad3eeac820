from warpcall.di import injectable


@injectable()
class Visible:
    pass
