"""An async @on_init method."""
from warpcall.di import injectable, module, on_init


@injectable()
class Connection:
    @on_init()
    async def open(self) -> None:
        pass


@module()
class AsyncInitModule:
    pass
