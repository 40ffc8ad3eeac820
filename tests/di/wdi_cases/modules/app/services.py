"""Declared in a submodule nobody imports explicitly: the environment imports it."""
from warpcall.di import injectable
from wdi_cases.modules.shared import SharedClock


@injectable()
class Greeter:
    def __init__(self, clock: SharedClock) -> None:
        self.clock = clock
