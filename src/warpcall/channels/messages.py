"""The dispatch envelopes as pydantic models, under aspyx-service's names ``Request`` and ``Response``.

The dispatch channels do not build these (``warpcall.core.envelope`` encodes and decodes
the same shapes without a model per call); they are for code that reads or writes
``POST /invoke`` bodies itself, e.g. a gateway or a test: ``Request.model_validate_json(body)``.
"""

from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel


class Request(BaseModel):
    """A dispatch call: ``method`` is ``"<component>:<service>:<method>"``, ``args`` the positional arguments."""

    method: str
    args: tuple[Any, ...]


class Response(BaseModel):
    """A dispatch reply: ``result``, or ``exception`` (warpcall sends ``{"type": ..., "message": ...}``,
    aspyx-service a string) when the call raised."""

    result: Optional[Any]
    exception: Optional[Any]
