"""The auth interop contract as an aspyx-service program declares it (component ``authinterop``, service ``vault``).

Run only with the aspyx virtual environment's python. The warpcall declaration of the same
names is in ``tests/interop/test_auth_interop.py`` (with warpcall's role checks added there).
"""

from abc import abstractmethod
from typing import Optional

from aspyx_service import Component, Service, component, service

CHANNELS = ["dispatch-json", "dispatch-msgpack"]


@service(name="vault")
class VaultService(Service):
    @abstractmethod
    def whoami(self) -> Optional[str]: ...

    @abstractmethod
    def secret(self) -> str: ...

    @abstractmethod
    async def whoami_async(self) -> Optional[str]: ...


@component(name="authinterop", services=[VaultService])
class AuthInteropComponent(Component):
    pass
