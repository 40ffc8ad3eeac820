"""The ``warpcall demo``: an example component served in a child process and called over every channel."""
