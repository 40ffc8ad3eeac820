"""The README's channel customization advice ("Channels"), in a client program.

Changed: the import lines (aspyx_service -> warpcall, aspyx.di(.aop) -> warpcall.di(.aop)).
README: the module and the typing import around the advice are not shown; filled in.
"""

from typing import cast

from warpcall import Channel, ServiceModule
from warpcall.di import module
from warpcall.di.aop import Invocation, advice, around, methods

CUSTOMIZED = []  # README: not in the README; the channels the advice customized


@advice
class ChannelAdvice:
    @around(methods().named("customize").of_type(Channel))
    def customize_channel(self, invocation: Invocation):
        channel = cast(Channel, invocation.args[0])

        channel.select_round_robin() # or select_first_url()
        CUSTOMIZED.append(channel)  # README: added

        return invocation.proceed()


@module(imports=[ServiceModule])
class Module:
    pass
