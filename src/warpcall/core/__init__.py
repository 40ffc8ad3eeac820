"""The hot path: URL selection, envelopes, HTTP/1.1 framing, proxies, marshalling, the inline request head.

Each module here is one Python source that Cython compiles with the C types of its augmenting
``ext/warpcall/core/<mod>.pxd``; uncompiled, the same file runs as plain Python. ``pbwire``
exists only compiled (``ext/warpcall/core/pbwire.pyx``); without it protobuf does its work.
See ``warpcall._compiled`` for the list and the ``WARPCALL_PURE=1`` switch.
"""
