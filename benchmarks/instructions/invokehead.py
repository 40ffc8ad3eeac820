"""The server's look at a chunk of bytes: is it one plain ``POST /invoke``?"""

SETUP = """
try:
    from warpcall.core import invokehead
except ImportError:
    from warpcall._native import invokehead

parse = invokehead.parse
body = b'{"method":"shop:cart:add","args":[1,"two",{"x":null}]}'
# what the dispatch channels send
plain = (
    b"POST /invoke HTTP/1.1\\r\\nHost: 127.0.0.1:8000\\r\\nContent-Type: application/json\\r\\n"
    b"Accept: application/json\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(body)
) + body
# a browser-like client: more and longer headers
browser = (
    b"POST /invoke HTTP/1.1\\r\\nHost: 127.0.0.1:8000\\r\\nAccept: */*\\r\\nAccept-Encoding: gzip, deflate\\r\\n"
    b"Connection: keep-alive\\r\\nUser-Agent: python-httpx/0.28.1\\r\\nX-Rpc-Method: shop:cart:add\\r\\n"
    b"Content-Type: application/json\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(body)
) + body
# refused after reading the whole head: a chunked body
chunked = (
    b"POST /invoke HTTP/1.1\\r\\nHost: 127.0.0.1:8000\\r\\nContent-Type: application/json\\r\\n"
    b"Transfer-Encoding: chunked\\r\\n\\r\\n"
)
# refused at the request line: another route
other = b"GET /health HTTP/1.1\\r\\nHost: 127.0.0.1:8000\\r\\n\\r\\n"
assert parse(plain, 1 << 20) is not None and parse(browser, 1 << 20) is not None
assert parse(chunked, 1 << 20) is None and parse(other, 1 << 20) is None
"""

CASES = {
    "parse plain": "parse(plain, 1048576)",
    "parse browser-like": "parse(browser, 1048576)",
    "parse refused chunked": "parse(chunked, 1048576)",
    "parse refused other route": "parse(other, 1048576)",
}
