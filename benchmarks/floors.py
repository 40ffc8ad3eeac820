"""What every benchmark needs to run servers in their own processes and to call the raw-HTTP floor."""

from __future__ import annotations

import asyncio
import os
import queue
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
READY_TIMEOUT = 30.0
TIMEOUT = 5.0
MAX_READS = 1000  # bounds the raw client's read loop


#: ``WARPCALL_BENCH_PIN``: where the benchmark processes run, so that a call and its floor always take
#: the same path through the scheduler (left to the OS, placement moves figures on a small VM by 50%).
#: ``same``: the calling process and every server on the first CPU, so the figures add up the CPU work
#: of both ends; ``split``: the calling process on the first CPU, the servers on the others, so every
#: call also pays a wake-up on another CPU. Unset: the OS decides.
PIN = os.environ.get("WARPCALL_BENCH_PIN", "")
if PIN not in ("", "same", "split"):
    raise RuntimeError(f"WARPCALL_BENCH_PIN must be 'same' or 'split', not {PIN!r}")
if PIN and not hasattr(os, "sched_setaffinity"):  # pragma: no cover - not Linux
    raise RuntimeError("WARPCALL_BENCH_PIN needs os.sched_setaffinity (Linux)")
_CPUS = sorted(os.sched_getaffinity(0)) if PIN else []


def pin_client() -> None:
    """Pin this process to its first CPU when ``WARPCALL_BENCH_PIN`` is set."""
    if _CPUS:
        os.sched_setaffinity(0, _CPUS[:1])


def _pin_server() -> None:
    os.sched_setaffinity(0, _CPUS[1:] if PIN == "split" and len(_CPUS) > 1 else _CPUS[:1])


def launch(script: str, *argv: str) -> tuple[subprocess.Popen[str], str]:
    """Run ``python <script> <argv>`` from this folder and wait (bounded) for its ``READY <address>`` line."""
    process = subprocess.Popen(
        [sys.executable, str(HERE / script), *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=HERE,
        preexec_fn=_pin_server if PIN else None,
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        # servers may print other lines first (aspyx lists its routes); READY ends the wait
        for _ in range(1000):
            line = process.stdout.readline() if process.stdout else ""
            if not line or line.startswith("READY "):
                lines.put(line)
                return

    threading.Thread(target=read, daemon=True).start()
    try:
        line = lines.get(timeout=READY_TIMEOUT)
    except queue.Empty:
        line = ""
    if not line.startswith("READY "):
        stop(process)
        raise RuntimeError(f"{script} {' '.join(argv)} did not start (exit code {process.poll()})")
    return process, line.split()[1]


def stop(process: subprocess.Popen[str]) -> None:
    """Close stdin (the servers' stop signal) and wait; kill if it hangs."""
    if process.stdin is not None:
        process.stdin.close()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def blocking_socket(host: str, port: int) -> socket.socket:
    """A connected blocking socket whose reads and writes still give up after TIMEOUT (kernel timeouts)."""
    sock = socket.create_connection((host, port), timeout=TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(None)
    tv = struct.pack("ll", int(TIMEOUT), 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
    return sock


def complete_body(data: bytes) -> bytes | None:
    """The body of the response in ``data`` once it is all there (uvicorn sends content-length), else None."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    start = data.find(b"content-length: ") + 16
    total = end + 4 + int(data[start : data.find(b"\r", start)])
    return data[end + 4 : total] if len(data) >= total else None


def raw_http(
    url: str, payload: bytes, content_type: str = "application/json", method: str = "POST"
) -> tuple[Callable[[], bytes], socket.socket]:
    """The floor: a prepared request written to a kept-alive blocking socket, the response read by length.

    ``method="GET"`` sends no body (``url`` carries the query).
    """
    authority, _, path = url.split("://", 1)[1].partition("/")
    host, port = authority.rsplit(":", 1)
    sock = blocking_socket(host, int(port))
    if method == "GET":
        request = b"GET /%s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path.encode(), authority.encode())
    else:
        request = (
            b"%s /%s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
            % (method.encode(), path.encode(), authority.encode(), content_type.encode(), len(payload))
            + payload
        )

    def call() -> bytes:
        sock.sendall(request)
        data = sock.recv(65536)
        for _ in range(MAX_READS):
            body = complete_body(data)
            if body is not None:
                return body
            data += sock.recv(65536)
        raise RuntimeError("no complete response")

    return call, sock


async def raw_http_async(url: str, payload: bytes, content_type: str = "application/json") -> tuple[Callable[[], Any], Any]:
    """The async floor: the same prepared POST over a kept-alive asyncio stream, response read by length.

    Returns ``(call, writer)``: ``await call()`` is one round trip; close ``writer`` when done.
    """
    authority, _, path = url.split("://", 1)[1].partition("/")
    host, port = authority.rsplit(":", 1)
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), TIMEOUT)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    request = (
        b"POST /%s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
        % (path.encode(), authority.encode(), content_type.encode(), len(payload))
        + payload
    )

    async def call() -> bytes:
        # a timer that aborts the connection bounds the call (cheaper than wait_for, which makes a task)
        deadline = asyncio.get_running_loop().call_later(TIMEOUT, writer.transport.abort)
        try:
            writer.write(request)
            data = await reader.read(65536)
            for _ in range(MAX_READS):
                body = complete_body(data)
                if body is not None:
                    return body
                more = await reader.read(65536)
                if not more:
                    break
                data += more
        finally:
            deadline.cancel()
        raise RuntimeError("no complete response")

    return call, writer
