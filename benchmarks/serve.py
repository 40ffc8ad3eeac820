"""Serve one side of the benchmark in its own process: ``python serve.py warpcall|warpcall-asgi|aspyx [CERT]``.

``warpcall-asgi`` is the warpcall server with ``inline_protocol=False``: every request through ASGI.
``CERT`` (a PEM file holding the certificate chain and key): the warpcall server serves HTTPS.

Prints ``READY <url>`` once serving on a free 127.0.0.1 port; stops when stdin closes.
"""

from __future__ import annotations

import contextlib
import sys


def main() -> None:
    kind = sys.argv[1]
    if kind in ("warpcall", "warpcall-asgi"):
        import bench_impl
        from bench_impl import BenchServerModule

        bench_impl.INLINE_PROTOCOL = kind == "warpcall"

        from warpcall import FastAPIServer
        from warpcall.server.tls import ServerTLS

        tls = ServerTLS(sys.argv[2]) if len(sys.argv) > 2 else None
        environment = FastAPIServer.boot(BenchServerModule, host="127.0.0.1", port=0, tls=tls)
        url = environment.get(FastAPIServer).url
    else:
        from aspyx_bench import boot_server

        # aspyx-service prints its route table; stdout carries only the READY line
        with contextlib.redirect_stdout(sys.stderr):
            environment, url = boot_server()
    print(f"READY {url}", flush=True)
    sys.stdin.read()
    environment.destroy()


if __name__ == "__main__":
    main()
