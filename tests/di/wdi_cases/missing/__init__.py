"""Needs a type nobody provides."""
from warpcall.di import injectable, module


class Database:
    pass


@injectable()
class Repository:
    def __init__(self, database: Database) -> None:
        self.database = database


@module()
class MissingModule:
    pass
