"""HTTPS for :class:`~warpcall.server.fastapi_server.FastAPIServer`: its certificate and key, and the
client certificates it asks for (mTLS).

``ServerTLS`` is a ``FastAPIServer`` option (``tls=``), a ``FastAPIServer.boot`` / ``serve_forever``
argument, or read from the configuration keys ``server.tls.cert_file``, ``server.tls.key_file``,
``server.tls.key_password``, ``server.tls.ca_file`` and ``server.tls.client_cert``. uvicorn serves
the TLS (asyncio's SSL transport under the same protocol: ``/invoke`` and the REST routes are still
answered inline); the files are loaded once when the server is made, so a bad one fails there with
a message naming it, not in uvicorn's thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from warpcall.exceptions import ServiceException

if TYPE_CHECKING:
    import ssl

__all__ = ["CLIENT_CERT_MODES", "ServerTLS"]

#: what ``client_cert`` may say: ask for no client certificate, verify one if sent, or refuse a client without
CLIENT_CERT_MODES = ("none", "optional", "required")


@dataclass(frozen=True)
class ServerTLS:
    """The server's side of TLS.

    - ``cert_file``: the server's certificate chain (PEM), leaf first; it may hold the key too.
    - ``key_file``: its private key (PEM; None: in ``cert_file``); ``key_password`` if it is encrypted.
    - ``client_cert``: ``"none"`` (default: no client certificate asked for), ``"optional"`` (one sent
      must verify) or ``"required"`` (mTLS: a client without a valid certificate is refused in the handshake).
    - ``ca_file``: the CAs client certificates must be signed by (PEM); needed unless ``client_cert`` is ``"none"``.

    TLS 1.2 at least (Python's ``PROTOCOL_TLS_SERVER`` default). Raises
    :class:`~warpcall.exceptions.ServiceException` for a mode it does not know, a missing ``ca_file``,
    or a file that cannot be loaded (naming it and its configuration key).
    """

    cert_file: str
    key_file: str | None = None
    key_password: str | None = None
    ca_file: str | None = None
    client_cert: str = "none"

    def __post_init__(self) -> None:
        if not isinstance(self.cert_file, str) or not self.cert_file:
            raise ServiceException(f"ServerTLS.cert_file must name a PEM file, got {self.cert_file!r}")
        if self.client_cert not in CLIENT_CERT_MODES:
            raise ServiceException(
                f"ServerTLS.client_cert must be one of {', '.join(CLIENT_CERT_MODES)}, got {self.client_cert!r}"
            )
        if self.client_cert != "none" and not self.ca_file:
            raise ServiceException(
                f"ServerTLS.client_cert={self.client_cert!r} needs ca_file (server.tls.ca_file): the CAs that sign "
                "the clients' certificates"
            )

    @classmethod
    def configured(cls, get: Callable[..., Any]) -> ServerTLS | None:
        """The settings of the ``server.tls.*`` keys (``get(key, type, default)`` reads one, as
        ``ConfigurationManager.get``); None when ``server.tls.cert_file`` is not set (plain http)."""
        cert_file = get("server.tls.cert_file", str, None)
        if not cert_file:
            return None
        return cls(
            cert_file,
            key_file=get("server.tls.key_file", str, None),
            key_password=get("server.tls.key_password", str, None),
            ca_file=get("server.tls.ca_file", str, None),
            client_cert=get("server.tls.client_cert", str, "none"),
        )

    def context(self) -> ssl.SSLContext:
        """An ``ssl.SSLContext`` of these settings: what uvicorn will make of them, made here to check the files."""
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(self.cert_file, self.key_file, self.key_password)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise ServiceException(
                f"TLS: cannot load the server certificate {self.cert_file!r} / key {self.key_file!r} "
                f"(server.tls.cert_file, server.tls.key_file): {exc}"
            ) from None
        if self.ca_file:
            try:
                context.load_verify_locations(self.ca_file)
            except (OSError, ValueError) as exc:
                raise ServiceException(
                    f"TLS: cannot load the client CA bundle {self.ca_file!r} (server.tls.ca_file): {exc}"
                ) from None
        context.verify_mode = self.verify_mode
        return context

    @property
    def verify_mode(self) -> ssl.VerifyMode:
        """``ssl.CERT_NONE`` / ``CERT_OPTIONAL`` / ``CERT_REQUIRED`` for ``client_cert``."""
        import ssl

        return {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}[self.client_cert]

    def uvicorn_options(self) -> dict[str, Any]:
        """The ``uvicorn.Config`` arguments serving these settings."""
        return {
            "ssl_certfile": self.cert_file,
            "ssl_keyfile": self.key_file,
            "ssl_keyfile_password": self.key_password,
            "ssl_ca_certs": self.ca_file,
            "ssl_cert_reqs": int(self.verify_mode),
        }

    def __repr__(self) -> str:  # the password stays out of logs
        password = "'***'" if self.key_password else "None"
        return (
            f"ServerTLS(cert_file={self.cert_file!r}, key_file={self.key_file!r}, key_password={password}, "
            f"ca_file={self.ca_file!r}, client_cert={self.client_cert!r})"
        )
