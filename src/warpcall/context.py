"""Call-scoped values that travel with a remote call.

``TokenContext`` holds the caller's access token (and an optional refresh
token) in context variables: every channel sends the access token as
``Authorization: Bearer <token>``, and the server sets it again for the
implementation. Context variables, not thread locals, so asyncio tasks and
threads each see their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class TokenContext:
    """The access and refresh token of the current call (aspyx-service's ``TokenContext``)."""

    #: ``ContextVar`` objects: ``get()``, ``set()`` and ``reset()`` as aspyx's context locals have
    access_token: ContextVar[str | None] = ContextVar("warpcall.access_token", default=None)
    refresh_token: ContextVar[str | None] = ContextVar("warpcall.refresh_token", default=None)

    @classmethod
    def get_access_token(cls) -> str | None:
        """The access token set for this context, or ``None``."""
        return cls.access_token.get()

    @classmethod
    def get_refresh_token(cls) -> str | None:
        """The refresh token set for this context, or ``None``."""
        return cls.refresh_token.get()

    @classmethod
    def set(cls, access_token: str, refresh_token: str | None = None) -> None:
        """Set the tokens for the rest of this context; a missing refresh token keeps the old one."""
        cls.access_token.set(access_token)
        if refresh_token:
            cls.refresh_token.set(refresh_token)

    @classmethod
    def clear(cls) -> None:
        """Forget both tokens."""
        cls.access_token.set(None)
        cls.refresh_token.set(None)

    @classmethod
    @contextmanager
    def use(cls, access_token: str, refresh_token: str | None = None) -> Iterator[None]:
        """Use the tokens inside the ``with`` block, restoring the previous ones after it."""
        access = cls.access_token.set(access_token)
        refresh = cls.refresh_token.set(refresh_token)
        try:
            yield
        finally:
            cls.access_token.reset(access)
            cls.refresh_token.reset(refresh)


__all__ = ["TokenContext"]
