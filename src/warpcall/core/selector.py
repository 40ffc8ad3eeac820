"""URL selection: which of a channel's known URLs serves the next call.

A selector holds two lists: every URL the registry knows (:attr:`URLSelector.urls`) and the ones
calls may go to (:attr:`URLSelector.live_urls`). They are one and the same tuple until a circuit
breaker (:mod:`warpcall.resilience.breaker`) ejects an instance: it then hands the selector the
list without it, and itself as the *guard* that every pick is shown to, so it can send one probe
to an instance whose cool-down is over. While every instance is healthy the guard is None and a
pick costs what it did before breakers existed: one pointer compared.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import count
from typing import TYPE_CHECKING, Any, cast

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
    """Holds a channel's current URL list and picks one URL per call.

    A subclass's ``select()`` picks from ``self._urls`` (the live URLs), raises through
    :meth:`_none_live` when it is empty, shows its pick to ``self._guard`` when one is set, and adds one
    to :attr:`picks`.
    """

    def __init__(self, owner: str = "") -> None:
        self.owner = owner
        #: URLs picked so far, one per call: what a channel's retry budget counts its deposits by (the call
        #: path pays no counter of its own; a count lost between threads only makes the budget smaller)
        self.picks = 0
        self._urls: tuple[str, ...] = ()
        self._all: tuple[str, ...] = ()
        self._guard: Any = None  # a warpcall.resilience.breaker.CircuitBreakers while an instance is ejected

    def set_urls(self, urls: Iterable[str]) -> None:
        """Replace the URL list; calls already under way keep the URL they picked."""
        every = tuple(urls)
        self._all = every  # first: a guard filtering from here on sees the new list
        guard = self._guard
        if guard is None:
            self._urls = every
        else:
            guard.refilter(self)

    @property
    def urls(self) -> tuple[str, ...]:
        """Every URL the registry knows for the channel, ejected ones included."""
        return self._all

    @property
    def live_urls(self) -> tuple[str, ...]:
        """The URLs calls may go to: :attr:`urls` without the instances a circuit breaker ejected."""
        return self._urls

    @property
    def guard(self) -> Any:
        """The circuit breaker table shown every pick while an instance is ejected (None: none is)."""
        return self._guard

    def set_live(self, live: tuple[str, ...], guard: Any) -> None:
        """Pick from ``live`` only, showing each pick to ``guard`` (a circuit breaker table; None: no guard)."""
        self._guard = guard
        self._urls = live

    def _none_live(self) -> str:
        """No URL to pick from: the guard's probe, or its CircuitOpenException, or no URL at all."""
        guard = self._guard
        if guard is not None:
            url: str = guard.route(self, None)
            return url
        raise _no_url(self.owner)

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
            return self._none_live()
        self.picks += 1
        if self._guard is not None:
            return cast(str, self._guard.route(self, urls[0]))
        return urls[0]


class RoundRobinURLSelector(URLSelector):
    """Each URL in turn, exact and thread-safe.

    Compiled, the GIL is held from reading the position to storing the next one; in plain Python
    another thread may run between the two, so there ``next()`` on ``itertools.count`` (atomic) counts.
    The position is :attr:`picks`.
    """

    def __init__(self, owner: str = "") -> None:
        URLSelector.__init__(self, owner)
        self._counter = count()

    @cython.locals(urls=tuple, n=cython.Py_ssize_t, i=cython.Py_ssize_t)
    def select(self) -> str:
        urls = self._urls
        n = len(urls)
        if n == 0:
            return self._none_live()
        if cython.compiled:
            i = self.picks
            self.picks = i + 1
        else:
            i = next(self._counter)
            self.picks = i + 1
        if self._guard is not None:  # an instance is ejected: the breaker may take this call as its probe
            return cast(str, self._guard.route(self, urls[i % n]))
        return urls[i % n]
