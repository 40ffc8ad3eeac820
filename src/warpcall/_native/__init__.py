"""Compiled core modules, built from ``ext/*.pyx``; ``warpcall._core`` picks them or their pure twins."""
