"""URL selection: which of a channel's known URLs serves the next call."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import count

from warpcall.exceptions import ServiceCommunicationException


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


class FirstURLSelector(URLSelector):
    """Always the first URL of the list."""

    def select(self) -> str:
        urls = self._urls
        if not urls:
            raise _no_url(self.owner)
        return urls[0]


class RoundRobinURLSelector(URLSelector):
    """Each URL in turn; exact and thread-safe (``next()`` on ``itertools.count`` is atomic)."""

    def __init__(self, owner: str = "") -> None:
        super().__init__(owner)
        self._counter = count()

    def select(self) -> str:
        urls = self._urls
        if not urls:
            raise _no_url(self.owner)
        return urls[next(self._counter) % len(urls)]
