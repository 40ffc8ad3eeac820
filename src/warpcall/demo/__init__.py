"""The ``warpcall demo``: an example component served in a child process and called over every channel.

Environments never import this package by scanning (``__warpcall_scan__``): its
implementations join an environment only in the demo's own processes.
"""

__warpcall_scan__ = False
