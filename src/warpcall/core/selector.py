"""URL selection: which of a channel's known URLs serves the next call."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import count
from typing import TYPE_CHECKING

from warpcall.exceptions import ServiceCommunicationException

if TYPE_CHECKING:  # type checkers read the shim: Cython ships no types for its pure-mode names
    from warpcall import _cython_shim as cython
else:
    try:
        import cython
    except ImportError:  # plain Python without Cython installed
        from warpcall import _cython_shim as cython


def _no_url(owner: str) -> ServiceCommunicationException:
    return ServiceCommunicationException(
        f"no URL available for {owner or 'this channel'}: "
        "the registry knows no running instance; start one or check the registry"
    )


class URLSelector:
    """Holds a channel's current URL list and picks one URL per call."""

    def __init__(self, owner: str = "") -> None:
        self.owner = owner
        self._urls: tuple[str, ...] = ()

    def set_urls(self, urls: Iterable[str]) -> None:
        """Replace the URL list; calls already under way keep the URL they picked."""
        self._urls = tuple(urls)

    @property
    def urls(self) -> tuple[str, ...]:
        """The current URL list."""
        return self._urls

    def select(self) -> str:
        """Return the URL for the next call, or raise ServiceCommunicationException when there is none."""
        raise NotImplementedError(f"{type(self).__name__} must implement select()")

    @cython.locals(urls=tuple, n=cython.Py_ssize_t, i=cython.Py_ssize_t, start=cython.Py_ssize_t, out=list)
    def others(self, url: str) -> list[str]:
        """Where a call that failed on ``url`` goes next: every other URL once, in list order from the one
        after ``url`` round to the one before it (all of them, in order, when ``url`` is not in the list)."""
        urls = self._urls
        n = len(urls)
        start = 0
        for i in range(n):
            if urls[i] == url:
                start = i + 1
                break
        out = []
        for i in range(n):
            other = urls[(start + i) % n]
            if other != url and other not in out:
                out.append(other)
        return out


class FirstURLSelector(URLSelector):
    """Always the first URL of the list."""

    @cython.locals(urls=tuple)
    def select(self) -> str:
        urls = self._urls
        if not urls:
            raise _no_url(self.owner)
        return urls[0]


class RoundRobinURLSelector(URLSelector):
    """Each URL in turn, exact and thread-safe.

    Compiled, the GIL is held from reading the position to storing the next one; in plain Python
    another thread may run between the two, so there ``next()`` on ``itertools.count`` (atomic) counts.
    """

    def __init__(self, owner: str = "") -> None:
        URLSelector.__init__(self, owner)
        self._next = 0
        self._counter = count()

    @cython.locals(urls=tuple, n=cython.Py_ssize_t, i=cython.Py_ssize_t)
    def select(self) -> str:
        urls = self._urls
        n = len(urls)
        if n == 0:
            raise _no_url(self.owner)
        if cython.compiled:
            i = self._next
            self._next = i + 1
        else:
            i = next(self._counter)
        return urls[i % n]
