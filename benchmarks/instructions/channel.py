"""A dispatch channel's plain call on loopback: URL selection plus ``request`` (its resilience hooks included).

The same raw socket server as the ``client`` scenario answers every request with the same reply. The
channel is set up as the service manager sets it up (its ``setup`` reads the defaults: breakers on, no
bulkhead), so the figure is what a healthy call pays for selection, the channel's request loop and the
client's exchange.
"""

SETUP = r"""
import socket
import threading
import types
from warpcall.channels.dispatch import DispatchJSONChannel

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
BASE = "http://127.0.0.1:%d" % listener.getsockname()[1]
HEADERS = [("content-type", "application/json")]
BODY = b'{"method":"app:greeter:hello","args":["world",3]}'
channel = DispatchJSONChannel()
channel.setup(types.SimpleNamespace(name="app"), None)
channel.selector.set_urls([BASE, BASE, BASE])
channel.customize()


if hasattr(type(channel), "_request"):  # the channels' own send (the public request is aspyx-service's, on httpx)

    def call():
        url = channel.get_url()
        return channel._request("POST", url + "/invoke", HEADERS, BODY)

else:  # an earlier commit, for --python comparisons

    def call():
        url = channel.get_url()
        return channel.request("POST", url + "/invoke", HEADERS, BODY)


try:  # the caller's token, sent as authorization: Bearer (warpcall.context; absent from earlier commits)
    from warpcall.context import TokenContext

    TOKEN = TokenContext.access_token
except ImportError:
    TOKEN = None


def call_with_token():
    if TOKEN is None:
        return call()
    mark = TOKEN.set("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbm4ifQ.c2lnbmF0dXJl")
    try:
        return call()
    finally:
        TOKEN.reset(mark)
"""

CASES = {
    "dispatch channel select + request": "call()",
    "dispatch channel select + request, token set": "call_with_token()",
}
