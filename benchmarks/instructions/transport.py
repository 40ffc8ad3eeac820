"""HTTP/1.1 bytes of one remote call: the request written, the reply parsed, and a loopback round trip."""

SETUP = r"""
import socket
try:
    from warpcall.core import transport
except ImportError:
    from warpcall._native import transport
build_request = transport.build_request
ResponseParser = transport.ResponseParser
HEADERS = [("content-type", "application/json"), ("x-warpcall-method", "app.services.Greeter.hello")]
BODY = b'{"method":"app.services.Greeter.hello","args":["world",3]}'
REPLY = (
    b"HTTP/1.1 200 OK\r\ndate: Thu, 03 Dec 2026 16:39:08 GMT\r\nserver: uvicorn\r\n"
    b"content-length: 27\r\ncontent-type: application/json\r\n\r\n"
    b'{"result":"hello world x3"}'
)
CUT = REPLY.index(b"\r\n\r\n") + 4
HEAD, TAIL = REPLY[:CUT], REPLY[CUT:]
CHUNKED = (
    b"HTTP/1.1 200 OK\r\ndate: Thu, 03 Dec 2026 16:39:08 GMT\r\nserver: uvicorn\r\n"
    b"content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    b'1b\r\n{"result":"hello world x3"}\r\n0\r\n\r\n'
)


def parse_one(data):
    parser = ResponseParser(67108864, False)
    parser.feed(data)
    return parser


def parse_two(head, tail):
    parser = ResponseParser(67108864, False)
    parser.feed(head)
    parser.feed(tail)
    return parser


# the socket path in one process: a loopback TCP pair, this thread plays the server between send and receive
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(1)
client = socket.create_connection(listener.getsockname())
client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
client.settimeout(None)
server, _ = listener.accept()
conn = transport.Connection(client)
conn.set_timeout(10.0)
REQUEST = build_request("POST", "/invoke", "127.0.0.1:8000", HEADERS, BODY)
server_recv, server_send = server.recv, server.sendall


def round_trip():
    if conn.idle():
        conn.send(REQUEST)
        server_recv(65536)
        server_send(REPLY)
        return conn.receive(ResponseParser(67108864, False))
"""

CASES = {
    "build_request POST /invoke": 'build_request("POST", "/invoke", "127.0.0.1:8000", HEADERS, BODY)',
    "parse 200 content-length, one piece": "parse_one(REPLY)",
    "parse 200 content-length, two pieces": "parse_two(HEAD, TAIL)",
    "parse 200 chunked": "parse_one(CHUNKED)",
    "loopback idle+send+receive": "round_trip()",
}
