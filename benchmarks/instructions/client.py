"""The sync HTTP client's whole exchange on loopback: pool, idle check, request, send, receive, parse.

A raw socket server thread answers every request with the same reply; its instructions are counted too
(callgrind counts every thread) and are the same whichever build the client runs on.
"""

SETUP = r"""
import socket
import threading
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
        while conn.recv(65536):  # one small request arrives in one piece
            conn.sendall(REPLY)
        conn.close()


threading.Thread(target=serve, daemon=True).start()
URL = "http://127.0.0.1:%d/invoke" % listener.getsockname()[1]
HEADERS = [("content-type", "application/json")]
BODY = b'{"method":"app:greeter:hello","args":["world",3]}'
client = HTTPClient(timeout=10.0)
exchange = client._exchange
"""

CASES = {
    "sync exchange POST /invoke": 'exchange("POST", URL, HEADERS, BODY, 10.0, 10.0, 10.0)',
}
