"""What a call's deadline costs the client's wire: the request written and the whole exchange, without and with
a deadline (the ``x-rpc-timeout`` header and the time checks). This build only: earlier ones take no deadline.
"""

SETUP = r"""
import socket
import threading
import time
from warpcall.core import transport
from warpcall.channels._http_sync import HTTPClient

REPLY = (
    b"HTTP/1.1 200 OK\r\ndate: Thu, 03 Dec 2026 16:39:08 GMT\r\nserver: uvicorn\r\n"
    b"content-length: 27\r\ncontent-type: application/json\r\n\r\n"
    b'{"result":"hello world x3"}'
)
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(8)


def serve():
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while conn.recv(65536):
            conn.sendall(REPLY)
        conn.close()


threading.Thread(target=serve, daemon=True).start()
URL = "http://127.0.0.1:%d/invoke" % listener.getsockname()[1]
HEADERS = [("content-type", "application/json")]
BODY = b'{"method":"app:greeter:hello","args":["world",3]}'
build_request = transport.build_request
client = HTTPClient(timeout=10.0)
exchange = client._exchange
monotonic = time.monotonic
FAR = monotonic() + 1e6  # a deadline that never passes during the run
"""

CASES = {
    "build_request, no deadline": 'build_request("POST", "/invoke", "127.0.0.1:8000", HEADERS, BODY)',
    "build_request, deadline (x-rpc-timeout)": 'build_request("POST", "/invoke", "127.0.0.1:8000", HEADERS, BODY, FAR)',
    "exchange, no deadline": 'exchange("POST", URL, HEADERS, BODY, 10.0, 10.0, 10.0)',
    "exchange, deadline now + 10 s": 'exchange("POST", URL, HEADERS, BODY, 10.0, 10.0, 10.0, monotonic() + 10.0)',
}
