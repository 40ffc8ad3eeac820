# C types of src/warpcall/core/envelope.py (Cython reads this file beside the source when compiling it)

cdef object _orjson_dumps, _orjson_loads, _orjson_encode_error, _orjson_decode_error, _orjson_options
cdef object _stdlib_encode, _stdlib_decode, _unpackb, _stack_error, _local, _long_digits, _quote

cdef bytes _pack(object value)
cdef bytes _encode_json(object value)
cdef object _json_decode(object body)
cdef object _decode_exact(object body)
cpdef tuple split_method(object name)
cdef tuple _check_request(object data)
cdef tuple _check_response(object data)
