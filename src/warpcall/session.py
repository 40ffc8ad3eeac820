"""Server-side sessions keyed by token, with pluggable storage and expiry (aspyx-service's API).

A ``SessionManager`` needs a :class:`SessionManager.Storage` (provide one in your module, e.g.
``SessionManager.InMemoryStorage(max_size=1000, ttl=3600)``). Typical use in an authorization
check or an implementation::

    session = manager.read_session(token)
    if session is None:
        session = manager.create_session(token)          # the factory set with set_factory
        manager.store_session(token, session, expiry)    # expiry: an aware datetime
    SessionContext.set(session)                           # SessionContext.get(MySession) in the call
"""

from __future__ import annotations

import contextvars
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any, Callable, Optional, TypeVar

from warpcall.di import injectable

__all__ = ["Session", "SessionContext", "SessionManager"]

T = TypeVar("T")


class Session:
    """Base class of the data a server keeps for one session."""

    def __init__(self) -> None:
        pass


class SessionContext:
    """The session of the current call, in a context variable (each request and task sees its own)."""

    current_session: contextvars.ContextVar[Session | None] = contextvars.ContextVar(
        "warpcall.session", default=None
    )

    @classmethod
    def get(cls, type: type[T]) -> T:  # noqa: A002 - aspyx-service's parameter name
        """The current session (typed as ``type``; no check is made), or None when none is set."""
        return cls.current_session.get()  # type: ignore[return-value]

    @classmethod
    def set(cls, session: Session) -> None:
        """Make ``session`` the current one for the rest of this context."""
        cls.current_session.set(session)

    @classmethod
    def clear(cls) -> None:
        """Forget the current session."""
        cls.current_session.set(None)


@injectable()
class SessionManager(SessionContext):
    """Creates sessions (with the factory given to :meth:`set_factory`), stores and reads them by token."""

    class Storage(ABC):
        """Where sessions live: ``store`` one for ``ttl_seconds``, ``read`` it back (None once expired or absent)."""

        @abstractmethod
        def store(self, token: str, session: Session, ttl_seconds: int) -> None:
            """Keep ``session`` under ``token`` for ``ttl_seconds`` seconds."""

        @abstractmethod
        def read(self, token: str) -> Optional[Session]:
            """The session stored under ``token``, or None when there is none or it expired."""

    class InMemoryStorage(Storage):
        """Sessions in this process's memory: at most ``max_size`` (the least recently stored go first), each
        kept for the shorter of its own ttl and ``ttl`` seconds."""

        def __init__(self, max_size: int = 1000, ttl: int = 3600) -> None:
            if max_size < 1:
                raise ValueError(f"max_size must be at least 1, got {max_size!r}")
            self.max_size = max_size
            self.ttl = ttl
            # token -> (session, monotonic expiry); oldest stored first
            self._entries: OrderedDict[str, tuple[Session, float]] = OrderedDict()
            self._lock = threading.Lock()

        def store(self, token: str, session: Session, ttl_seconds: int) -> None:
            now = time.monotonic()
            expires = now + min(max(ttl_seconds, 0), self.ttl)
            with self._lock:
                self._entries.pop(token, None)
                self._entries[token] = (session, expires)
                self._purge(now)
                while len(self._entries) > self.max_size:
                    self._entries.popitem(last=False)

        def read(self, token: str) -> Optional[Session]:
            with self._lock:
                entry = self._entries.get(token)
                if entry is None:
                    return None
                session, expires = entry
                if time.monotonic() >= expires:
                    del self._entries[token]
                    return None
                return session

        def __len__(self) -> int:
            with self._lock:
                self._purge(time.monotonic())
                return len(self._entries)

        def _purge(self, now: float) -> None:
            # expired entries go when the storage is written or counted, so it never holds them unboundedly
            expired = [token for token, (_, expires) in self._entries.items() if now >= expires]
            for token in expired:
                del self._entries[token]

    def __init__(self, storage: SessionManager.Storage) -> None:
        self.storage = storage
        self.session_factory: Optional[Callable[..., Session]] = None

    def set_factory(self, factory: Callable[..., Session]) -> None:
        """Set the function :meth:`create_session` calls to make a session."""
        self.session_factory = factory

    def create_session(self, *args: Any, **kwargs: Any) -> Session:
        """A new session made by the factory from the arguments (a token, its claims, ...)."""
        if self.session_factory is None:
            raise RuntimeError("SessionManager.create_session: no factory set; call set_factory(...) first")
        return self.session_factory(*args, **kwargs)

    def store_session(self, token: str, session: Session, expiry: datetime) -> None:
        """Store ``session`` under ``token`` until ``expiry`` (an aware datetime; a naive one is read as UTC)."""
        if expiry.tzinfo is None:
            expiry = expiry.replace(tzinfo=timezone.utc)
        ttl_seconds = max(int((expiry - datetime.now(timezone.utc)).total_seconds()), 0)
        self.storage.store(token, session, ttl_seconds)

    def read_session(self, token: str) -> Optional[Session]:
        """The session stored under ``token``, or None."""
        return self.storage.read(token)
