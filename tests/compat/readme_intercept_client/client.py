"""The README's "Intercepting calls": an httpx.Client subclass adding a bearer token, installed by an
around advice on HTTPXChannel.make_client, in a client program.

Changed: the import lines (aspyx_service -> warpcall, aspyx.di(.aop) -> warpcall.di(.aop)).
README: the token provider is `...`; filled in. The module around the advice is not shown; filled in.
"""

import httpx

from warpcall import HTTPXChannel, ServiceModule
from warpcall.di import module
from warpcall.di.aop import Invocation, advice, around, methods

TOKENS = iter(f"token-{n}" for n in range(1, 1000))  # README: what the token provider hands out


class InterceptingClient(httpx.Client):
    # constructor

    def __init__(self, *args, **kwargs):
        self.token_provider = lambda: next(TOKENS)  # README: `...`
        super().__init__(*args, **kwargs)

    # override

    def request(self, method, url, *args, **kwargs):
        headers = kwargs.pop("headers", {})
        headers["Authorization"] = f"Bearer {self.token_provider()}"
        kwargs["headers"] = headers

        return super().request(method, url, *args, **kwargs)

@advice
class ChannelAdvice:
    def __init__(self):
        pass

    @around(methods().named("make_client").of_type(HTTPXChannel))
    def make_client(self, invocation: Invocation):
        return InterceptingClient()


@module(imports=[ServiceModule])
class Module:
    pass
