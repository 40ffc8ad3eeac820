"""Pure-Python twins of the compiled core modules in ``warpcall._native``.

Each module here is the reference behaviour: the compiled module of the same
name must give the same results, raise the same exceptions with the same
messages. Import them through ``warpcall._core``, never directly.
"""
