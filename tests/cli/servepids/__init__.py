"""A small application for ``warpcall serve``'s tests: a service answering with its process id."""
