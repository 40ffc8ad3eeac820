"""What the sync and async HTTP clients share: URL targets, timeouts, errors and responses.

A ``_Target`` is what a URL means on the wire, parsed once per URL and cached. ``ClientTLS``
says how ``https://`` servers are checked (and, for mTLS, who the client is). The
error builders give every failure httpx's exception type and a message naming the URL;
``_read_limited`` enforces ``max_body`` and ``_response`` hands a reply to httpx.

httpx is imported by the first error or httpx client, and ssl by the first https connection, not
here: a process whose calls all succeed over plain http never loads them.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:
    import ssl

    import httpx

    from warpcall.channels._http_errors import TLSRefusedError

logger = logging.getLogger("warpcall.client")  # the client's messages (documented hierarchy: warpcall.client)

_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"


class _Target:
    """What a URL means to the wire: where to connect and what to write; parsed once per URL."""

    __slots__ = ("tls", "host", "port", "key", "host_header", "path")

    def __init__(self, url: str) -> None:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise _unsupported(f"cannot call {url!r}: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise _unsupported(f"cannot call {url!r}: only http:// and https:// URLs are supported")
        host = parts.hostname
        if not host:
            raise _unsupported(f"cannot call {url!r}: the URL has no host")
        default = 443 if scheme == "https" else 80
        self.tls = scheme == "https"
        self.host = host
        self.port = port or default
        self.key = (scheme, host, self.port)
        name = f"[{host}]" if ":" in host else host
        self.host_header = name if self.port == default else f"{name}:{self.port}"
        # percent-encode what may not appear raw in a request line, as httpx does; '%' stays (already encoded)
        path = quote(parts.path, safe=_PATH_SAFE) or "/"
        self.path = f"{path}?{quote(parts.query, safe=_QUERY_SAFE)}" if parts.query else path


_TARGETS: dict[str, _Target] = {}


def _target(url: str) -> _Target:
    target = _TARGETS.get(url)
    if target is None:
        target = _Target(url)
        if len(_TARGETS) >= 4096:
            _TARGETS.clear()
        _TARGETS[url] = target
    return target


class ClientTLS:
    """How a client checks the ``https://`` servers it calls, and who it is to them (mTLS).

    - ``ca_file``: a PEM bundle of the CAs whose certificates are trusted (None: the system's store).
    - ``cert_file``, ``key_file``: the client's certificate chain and its private key, for servers that
      ask for one (``key_file`` None: the key is in ``cert_file``). Both None: no client certificate.
    - ``verify``: False accepts any certificate for any host name, a man in the middle's too: for
      tests and trusted networks only (logged as a warning when the context is made).

    Certificates and host names are verified by default (TLS 1.2 at least, Python's default ciphers).
    :meth:`context` is the ``ssl.SSLContext`` of these settings, made on first use and shared by every
    client with the same settings (one per channel configuration). A bundle or key that cannot be
    loaded raises ``ConfigurationException`` naming the file and the configuration key.
    """

    __slots__ = ("ca_file", "cert_file", "key_file", "verify", "_context")

    def __init__(
        self,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        verify: bool = True,
    ) -> None:
        if key_file is not None and cert_file is None:
            from warpcall.di import ConfigurationException

            raise ConfigurationException(
                f"TLS key_file {key_file!r} given without cert_file (http.tls.cert_file): give the certificate too"
            )
        self.ca_file = ca_file
        self.cert_file = cert_file
        self.key_file = key_file
        self.verify = bool(verify)
        self._context: ssl.SSLContext | None = None

    @classmethod
    def configured(cls, get: Any, channel: str) -> ClientTLS:
        """The settings of ``http.<channel>.tls.<key>``, else ``http.tls.<key>`` (``get(key, type, default)`` reads
        one, as ``ConfigurationManager.get``); keys: ``ca_file``, ``cert_file``, ``key_file``, ``verify``.
        Configured files are loaded at once (a bad one fails the channel's setup, not its first call)."""
        values: dict[str, Any] = {}
        for key, kind, default in (("ca_file", str, None), ("cert_file", str, None), ("key_file", str, None),
                                   ("verify", bool, True)):
            value = get(f"http.tls.{key}", kind, default)
            values[key] = get(f"http.{channel}.tls.{key}", kind, value)
        if values == {"ca_file": None, "cert_file": None, "key_file": None, "verify": True}:
            return DEFAULT_TLS
        tls = cls(**values)
        tls.context()
        return tls

    @property
    def key(self) -> tuple[str | None, str | None, str | None, bool]:
        """What makes two settings the same: their contexts are one."""
        return self.ca_file, self.cert_file, self.key_file, self.verify

    def context(self) -> ssl.SSLContext:
        """The ``ssl.SSLContext`` of these settings (made once, shared by equal settings)."""
        context = self._context
        if context is None:
            with _CONTEXTS_LOCK:
                context = _CONTEXTS.get(self.key)
                if context is None:
                    context = _CONTEXTS[self.key] = self._make()
            self._context = context
        return context

    def _make(self) -> ssl.SSLContext:
        import ssl

        from warpcall.di import ConfigurationException

        try:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca_file)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise ConfigurationException(
                f"TLS: cannot load the CA bundle {self.ca_file!r} (http.tls.ca_file): {exc}"
            ) from None
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            logger.warning("TLS certificate verification is off (http.tls.verify = false): any server is trusted")
        if self.cert_file is not None:
            try:
                context.load_cert_chain(self.cert_file, self.key_file)
            except (OSError, ValueError) as exc:
                raise ConfigurationException(
                    f"TLS: cannot load the client certificate {self.cert_file!r} / key {self.key_file!r} "
                    f"(http.tls.cert_file, http.tls.key_file): {exc}"
                ) from None
        return context

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ClientTLS) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return (
            f"ClientTLS(ca_file={self.ca_file!r}, cert_file={self.cert_file!r}, key_file={self.key_file!r}, "
            f"verify={self.verify})"
        )


_CONTEXTS: dict[tuple[str | None, str | None, str | None, bool], ssl.SSLContext] = {}
_CONTEXTS_LOCK = threading.Lock()
#: verify with the system's CAs, no client certificate: what an unconfigured client does
DEFAULT_TLS = ClientTLS()


def _check_tls(tls: ClientTLS | ssl.SSLContext | None) -> ClientTLS | ssl.SSLContext:
    if tls is None:
        return DEFAULT_TLS
    if isinstance(tls, ClientTLS):
        return tls
    import ssl  # an SSLContext given: loaded already

    if not isinstance(tls, ssl.SSLContext):
        raise TypeError(f"tls must be a ClientTLS or an ssl.SSLContext, not {type(tls).__name__}")
    return tls


def _ssl_context(tls: ClientTLS | ssl.SSLContext) -> ssl.SSLContext:
    return tls.context() if isinstance(tls, ClientTLS) else tls


def _check_timeout(timeout: float) -> float:
    if not timeout or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    return float(timeout)


def _check_expiry(expiry: float) -> float:
    if isinstance(expiry, bool) or not isinstance(expiry, (int, float)) or not expiry >= 0:
        raise ValueError(f"keepalive_expiry must be a number of seconds >= 0, not {expiry!r}")
    return float(expiry)


def _attach_request(exc: BaseException, method: str, url: str) -> None:
    """Give a direct-path error the ``.request`` an httpx client would have set (other errors pass)."""
    loaded = sys.modules.get("httpx")  # only httpx makes its errors: none exist before it is imported
    if loaded is None or not isinstance(exc, loaded.RequestError):
        return
    try:
        exc.request  # noqa: B018 - the property raises when httpx has not set a request
    except RuntimeError:
        try:
            exc.request = loaded.Request(method, url)
        except Exception:  # an unusable URL: the message already names it
            pass


def _raw_headers(response: httpx.Response) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.raw]


def _timeouts(extensions: dict[str, Any], default: float) -> tuple[float, float, float, float]:
    """connect, write, read, pool timeouts from an httpx request; None means the client's default."""
    t = extensions.get("timeout") or {}
    return (
        t.get("connect") or default,
        t.get("write") or default,
        t.get("read") or default,
        t.get("pool") or default,
    )


def _reason(exc: OSError) -> str:
    """The OS's words for an error, the same whichever API (socket or asyncio) reported it; OpenSSL's for TLS."""
    ssl = sys.modules.get("ssl")
    if ssl is not None and isinstance(exc, ssl.SSLError):  # its errno is OpenSSL's code, not the OS's
        return _tls_reason(exc)
    if isinstance(exc, socket.gaierror) or not exc.errno:
        return exc.strerror or str(exc)
    return os.strerror(exc.errno)


def _tls_reason(exc: ssl.SSLError) -> str:
    """What went wrong in TLS, and what to check when it is the server refusing this client."""
    verify_message = getattr(exc, "verify_message", None)
    if verify_message:  # ssl.SSLCertVerificationError
        return f"TLS certificate verification failed: {verify_message}"
    reason = str(exc.reason or exc.strerror or exc)
    hint = ""
    if "CERTIFICATE_REQUIRED" in reason or "BAD_CERTIFICATE" in reason or "UNKNOWN_CA" in reason:
        hint = " (the server did not accept this client's certificate: see http.tls.cert_file / key_file)"
    elif "WRONG_VERSION_NUMBER" in reason or "RECORD_LAYER" in reason:
        hint = " (is it a plain http server?)"
    return f"TLS error: {exc.strerror or reason}{hint}"


# the error builders import httpx for its exception types: they run on failures only


def _unsupported(message: str) -> httpx.UnsupportedProtocol:
    import httpx

    return httpx.UnsupportedProtocol(message)


def _bad_request(method: str, url: str, exc: ValueError) -> httpx.LocalProtocolError:
    import httpx

    return httpx.LocalProtocolError(f"cannot send {method} {url}: {exc}")


def _connect_error(url: str, exc: OSError) -> httpx.ConnectError:
    ssl = sys.modules.get("ssl")
    if ssl is not None and isinstance(exc, ssl.SSLError):
        return _tls_refused(url, exc)
    import httpx

    return httpx.ConnectError(f"cannot connect to {url}: {_reason(exc)}")


def _tls_refused(url: str, exc: ssl.SSLError) -> TLSRefusedError:
    """A TLS handshake that failed: no byte of the request went out, and the same server would refuse again."""
    from warpcall.channels._http_errors import TLSRefusedError

    return TLSRefusedError(f"cannot connect to {url}: {_reason(exc)}")


def _write_error(url: str, exc: OSError) -> httpx.WriteError:
    import httpx

    return httpx.WriteError(f"sending the request to {url} failed: {_reason(exc)}")


def _unsent_error(url: str, exc: OSError) -> httpx.WriteError:
    """A write that failed before the OS took any byte of the request, on a connection that carried nothing yet."""
    from warpcall.channels._http_errors import RequestNotSentError

    return RequestNotSentError(f"sending the request to {url} failed before any byte went out: {_reason(exc)}")


def _read_error(url: str, exc: OSError) -> httpx.ReadError:
    import httpx

    return httpx.ReadError(f"reading the response from {url} failed: {_reason(exc)}")


def _protocol_error(url: str, exc: ValueError, first_tls: bool = False) -> httpx.RemoteProtocolError:
    """``first_tls``: the error came on a TLS connection's first exchange, where a server closing without a word
    is most likely refusing this client's certificate (TLS 1.3 ends the handshake before the server checks it,
    and asyncio's server drops its alert)."""
    from warpcall.core.transport import ResponseTooLarge  # loaded: the clients import it

    if isinstance(exc, ResponseTooLarge):
        from warpcall.channels._http_errors import ResponseTooLargeError

        return ResponseTooLargeError(f"bad response from {url}: {exc}")
    import httpx

    hint = ""
    if first_tls and "without sending a response" in str(exc):
        hint = (
            " (a TLS server requiring a client certificate closes the connection so when it got none, or one it"
            " does not trust: see http.tls.cert_file / key_file)"
        )
    return httpx.RemoteProtocolError(f"bad response from {url}: {exc}{hint}")


def _peer_gone(exc: BaseException) -> bool:
    """``exc`` says the peer closed or reset the connection: the socket's words, or TLS's (an EOF without
    close_notify, or the peer's close_notify, met while writing)."""
    if isinstance(exc, ConnectionError):
        return True
    ssl = sys.modules.get("ssl")
    return ssl is not None and isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError))


def _closed_while_sending(url: str, exc: Exception) -> httpx.WriteError:
    import httpx

    reason = _reason(exc) if isinstance(exc, OSError) else "the server closed the connection"
    return httpx.WriteError(f"sending the request to {url} failed: {reason}")


def _deadline_headers(headers: Any, deadline: float) -> Any:
    """``headers`` with ``x-rpc-timeout`` for ``deadline`` added unless they have one (the https path's,
    which build_request does not write)."""
    for name, _ in headers:
        if (name.decode("latin-1") if isinstance(name, bytes) else name).lower() == "x-rpc-timeout":
            return headers
    return [*headers, ("x-rpc-timeout", str(max(0, int((deadline - time.monotonic()) * 1000))))]


def _past(deadline: float) -> bool:
    """The call's deadline (a ``time.monotonic()`` instant, 0: none) has passed, to within the OS's timer tick."""
    return deadline > 0.0 and time.monotonic() >= deadline - 0.005


def _read_timeout(url: str, timeout: float, deadline: float = 0.0) -> httpx.ReadTimeout:
    import httpx

    if _past(deadline):
        return httpx.ReadTimeout(f"no whole response from {url} before the call's deadline")
    return httpx.ReadTimeout(f"no response from {url} within {timeout} s (read timeout)")


def _write_timeout(url: str, timeout: float, deadline: float = 0.0) -> httpx.WriteTimeout:
    import httpx

    if _past(deadline):
        return httpx.WriteTimeout(f"sending the request to {url} did not end before the call's deadline")
    return httpx.WriteTimeout(f"sending the request to {url} took over {timeout} s (write timeout)")


def _connect_timeout(url: str, timeout: float, deadline: float = 0.0) -> httpx.ConnectTimeout:
    import httpx

    if _past(deadline):
        return httpx.ConnectTimeout(f"cannot connect to {url} before the call's deadline")
    return httpx.ConnectTimeout(f"cannot connect to {url} within {timeout} s (connect timeout)")


def _read_limited(chunks: Any, max_body: int, url: str) -> bytes:
    out = bytearray()
    for chunk in chunks:
        out += chunk
        if len(out) > max_body:
            from warpcall.channels._http_errors import ResponseTooLargeError

            raise ResponseTooLargeError(
                f"bad response from {url}: response body exceeds the limit of {max_body} bytes; "
                "raise max_body if this is expected"
            )
    return bytes(out)


def _response(status: int, reason: str, headers: list[tuple[str, str]], content: bytes) -> httpx.Response:
    import httpx  # loaded: only the httpx transports hand replies to httpx

    return httpx.Response(
        status,
        headers=headers,
        stream=httpx.ByteStream(content),
        extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason.encode("latin-1", "replace")},
    )
