"""Compiled twin of warpcall._pure.selector: URL selection per call."""

from warpcall.exceptions import ServiceCommunicationException


cdef object _no_url(str owner):
    return ServiceCommunicationException(
        f"no URL available for {owner or 'this channel'}: "
        "the registry knows no running instance; start one or check the registry"
    )


cdef class URLSelector:
    """Holds a channel's current URL list and picks one URL per call."""

    cdef public str owner
    cdef tuple _urls

    def __init__(self, str owner=""):
        self.owner = owner
        self._urls = ()

    def set_urls(self, urls):
        """Replace the URL list; calls already under way keep the URL they picked."""
        self._urls = tuple(urls)

    @property
    def urls(self):
        """The current URL list."""
        return self._urls

    def select(self):
        """Return the URL for the next call, or raise ServiceCommunicationException when there is none."""
        raise NotImplementedError(f"{type(self).__name__} must implement select()")


cdef class FirstURLSelector(URLSelector):
    """Always the first URL of the list."""

    def select(self):
        cdef tuple urls = self._urls
        if not urls:
            raise _no_url(self.owner)
        return urls[0]


cdef class RoundRobinURLSelector(URLSelector):
    """Each URL in turn; exact and thread-safe: the GIL is held from read to increment."""

    cdef Py_ssize_t _next

    def __init__(self, str owner=""):
        URLSelector.__init__(self, owner)
        self._next = 0

    def select(self):
        cdef tuple urls = self._urls
        cdef Py_ssize_t n = len(urls)
        if n == 0:
            raise _no_url(self.owner)
        cdef Py_ssize_t i = self._next
        self._next = i + 1
        return urls[i % n]
