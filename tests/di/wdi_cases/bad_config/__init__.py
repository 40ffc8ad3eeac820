"""An @inject_value whose configured value does not convert to the setter's type."""
from typing import Any

from warpcall.di import create, injectable, module
from warpcall.di.configuration import ConfigurationSource, inject_value


class StaticSource(ConfigurationSource):
    def load(self) -> dict[str, Any]:
        return {"server": {"port": "eighty"}}


@injectable(eager=False)
class Server:
    @inject_value("server.port", default=8000)
    def set_port(self, port: int) -> None:
        self.port = port


@module()
class BadConfigModule:
    @create()
    def source(self) -> StaticSource:
        return StaticSource()
