"""An async around advice matching a sync method."""
from warpcall.di import injectable, module
from warpcall.di.aop import Invocation, advice, around, methods


@injectable()
class Ledger:
    def book(self, amount: int) -> int:
        return amount


@advice
class AsyncAudit:
    @around(methods().named("book"))
    async def audit(self, invocation: Invocation) -> object:
        return await invocation.proceed()


@module()
class AsyncAdviceModule:
    pass
