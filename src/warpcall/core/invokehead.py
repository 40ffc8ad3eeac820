"""Recognize one complete, plain ``POST /invoke`` request in a chunk of bytes read from a connection.

Pure twin of the compiled ``warpcall._native.invokehead``. The server's protocol asks
:func:`parse` about every chunk it receives while the connection is idle. Only a chunk
that is exactly one request of the plainest form gets an answer; for everything else
(a request in pieces, two requests, another route, HTTP/1.0, chunked or oversized bodies,
``Expect``, ``Upgrade``, any byte a strict parser could read differently) it returns None
and the chunk goes to uvicorn's parser as before. So this parser never has to agree with
llhttp on a bad request: it only has to be sure of the good ones.
"""

from __future__ import annotations

__all__ = ["REQUEST_LINE", "parse"]

REQUEST_LINE = b"POST /invoke HTTP/1.1\r\n"
MAX_HEADERS = 100

_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
# visible ASCII, space and tab: anything else in a value (obs-text, controls) is left to uvicorn
_VALUE = frozenset(range(0x20, 0x7F)) | {0x09}
# headers that change how the request is framed or answered: such a request takes uvicorn's path
_REFUSED = frozenset((b"transfer-encoding", b"expect", b"upgrade", b"te", b"trailer"))


def parse(data: bytes, limit: int) -> tuple[bytes, bytes, int] | None:
    """``(content type, x-rpc-method, head length)`` when ``data`` is exactly one plain ``POST /invoke``.

    Plain means: HTTP/1.1, well-formed header lines of visible ASCII, one ``Content-Length``
    of at most ``limit`` matching the bytes after the head, at most one ``Content-Type`` and
    one ``X-Rpc-Method``, no ``Transfer-Encoding``, ``Expect``, ``Upgrade``, ``TE`` or ``Trailer``,
    ``Connection`` only as ``keep-alive``. Values come without surrounding spaces or tabs;
    a missing ``Content-Type`` or ``X-Rpc-Method`` is ``b""``.
    """
    if type(data) is not bytes or not data.startswith(REQUEST_LINE):
        return None
    end = data.find(b"\r\n\r\n", len(REQUEST_LINE) - 2)
    if end < 0:
        return None
    head_length = end + 4
    lines = data[len(REQUEST_LINE):end].split(b"\r\n") if end > len(REQUEST_LINE) - 2 else []
    if len(lines) > MAX_HEADERS:
        return None
    content_length = -1
    content_type = method = None
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon or not name or not _TOKEN.issuperset(name) or not _VALUE.issuperset(value):
            return None
        value = value.strip(b" \t")
        name = name.lower()
        if name == b"content-length":
            if content_length >= 0 or not value.isdigit() or len(value) > 18:
                return None
            content_length = int(value)
        elif name == b"content-type":
            if content_type is not None:
                return None
            content_type = value
        elif name == b"x-rpc-method":
            if method is not None:
                return None
            method = value
        elif name == b"connection":
            if value.lower() != b"keep-alive":
                return None
        elif name in _REFUSED:
            return None
    if content_length < 0 or content_length > limit or len(data) - head_length != content_length:
        return None
    return content_type or b"", method or b"", head_length
