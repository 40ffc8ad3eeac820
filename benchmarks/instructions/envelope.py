"""The dispatch envelope: encoding and decoding requests and responses, JSON and msgpack."""

SETUP = """
try:
    from warpcall.core import envelope
except ImportError:
    from warpcall._native import envelope

small = [1, "two", {"x": None}]
medium = [
    {"id": i, "name": f"item {i}", "price": 1.25 * i, "tags": ["a", "b", "c"], "stock": {"here": i, "there": None}}
    for i in range(10)
]
encode_request_json = envelope.encode_request_json
decode_request_json = envelope.decode_request_json
encode_response_json = envelope.encode_response_json
decode_response_json = envelope.decode_response_json
encode_request_msgpack = envelope.encode_request_msgpack
decode_request_msgpack = envelope.decode_request_msgpack
encode_response_msgpack = envelope.encode_response_msgpack
decode_response_msgpack = envelope.decode_response_msgpack
split_method = envelope.split_method
request_json_small = encode_request_json("shop:cart:add", small)
request_json_medium = encode_request_json("shop:cart:add", medium)
response_json_small = encode_response_json(small)
response_json_medium = encode_response_json(medium)
request_msgpack_small = encode_request_msgpack("shop:cart:add", small)
request_msgpack_medium = encode_request_msgpack("shop:cart:add", medium)
response_msgpack_small = encode_response_msgpack(small)
response_msgpack_medium = encode_response_msgpack(medium)
"""

CASES = {
    "encode request json small": 'encode_request_json("shop:cart:add", small)',
    "encode request json medium": 'encode_request_json("shop:cart:add", medium)',
    "decode request json small": "decode_request_json(request_json_small)",
    "decode request json medium": "decode_request_json(request_json_medium)",
    "encode response json small": "encode_response_json(small)",
    "encode response json medium": "encode_response_json(medium)",
    "decode response json small": "decode_response_json(response_json_small)",
    "decode response json medium": "decode_response_json(response_json_medium)",
    "encode request msgpack small": 'encode_request_msgpack("shop:cart:add", small)',
    "encode request msgpack medium": 'encode_request_msgpack("shop:cart:add", medium)',
    "decode request msgpack small": "decode_request_msgpack(request_msgpack_small)",
    "decode request msgpack medium": "decode_request_msgpack(request_msgpack_medium)",
    "encode response msgpack small": "encode_response_msgpack(small)",
    "encode response msgpack medium": "encode_response_msgpack(medium)",
    "decode response msgpack small": "decode_response_msgpack(response_msgpack_small)",
    "decode response msgpack medium": "decode_response_msgpack(response_msgpack_medium)",
    "split_method": 'split_method("shop:cart:add")',
}
