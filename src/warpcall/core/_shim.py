"""What the core's sources use of the ``cython`` module, for plain Python without Cython installed."""

compiled = False
