"""The README's channel customization advice ("Channels") with the select_first_url() its comment offers.

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

        channel.select_first_url() # README: the "or select_first_url()" of its comment
        CUSTOMIZED.append(channel)  # README: added

        return invocation.proceed()


@module(imports=[ServiceModule])
class Module:
    pass
