"""Helpers aspyx-service's server module exports: joining route paths and reading Google-style docstrings.

``parse_google_docstring`` is what the OpenAPI generator (``warpcall.generator``) reads
parameter descriptions from; ``join_paths`` is the joining the REST routes use.
"""

from __future__ import annotations

import inspect
import re
from typing import Optional

from warpcall.routes import join_path

__all__ = ["join_paths", "parse_google_docstring"]

#: ``name: text`` or ``name (type): text`` opening one entry of an ``Args:`` section
_ARG = re.compile(r"(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)")
_SECTIONS = ("Args", "Arguments", "Parameters", "Returns", "Return", "Raises", "Yields", "Examples", "Example", "Note")


def join_paths(prefix: str, path: str) -> str:
    """The route path of ``path`` under the service's ``@rest(prefix)``: one '/' between them, a leading '/'."""
    return join_path(prefix, path)


def parse_google_docstring(doc: Optional[str]) -> dict[str, object]:
    """Read a Google-style docstring into ``summary`` (its first line), ``description`` (the whole text),
    ``args`` (parameter name -> description, from ``Args:``) and ``returns`` (the ``Returns:`` text).

    Missing parts are None (``args``: empty). Entries continued on further, deeper-indented lines are joined.
    """
    text = inspect.cleandoc(doc or "")
    if not text:
        return {"summary": None, "description": None, "args": {}, "returns": None}
    lines = text.splitlines()
    section = ""
    args: dict[str, str] = {}
    returns: list[str] = []
    current = ""
    for line in lines[1:]:
        stripped = line.strip()
        header = stripped[:-1] if stripped.endswith(":") else ""
        if header in _SECTIONS:
            section, current = header, ""
            continue
        if not stripped:
            continue
        if section in ("Args", "Arguments", "Parameters"):
            entry = _ARG.fullmatch(stripped)
            if entry is not None:
                current = entry.group(1)
                args[current] = entry.group(2).strip()
            elif current:
                args[current] = f"{args[current]} {stripped}".strip()
        elif section in ("Returns", "Return"):
            returns.append(stripped)
    result = " ".join(returns) or None
    if result is not None:
        typed = re.fullmatch(r"[\w\[\], .|]+:\s*(.*)", result)  # "Type: text" -> "text"
        result = typed.group(1) if typed is not None else result
    return {"summary": lines[0].strip(), "description": text, "args": args, "returns": result}
