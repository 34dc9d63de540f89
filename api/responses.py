"""A JSON response rendered with orjson (fast, and serialises dates and decimals the kg layer returns)."""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson
from starlette.responses import Response

log = logging.getLogger("spinekg.api")
UNRENDERABLE = b'{"detail":"internal error: the answer could not be written as JSON"}'


def dumps(content: Any) -> bytes | None:
    """``content`` as JSON; None (never an exception) when it cannot be written at all."""
    try:
        return orjson.dumps(content, default=str)
    except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits, an unpaired surrogate, deep nesting
        pass
    # Last resort: the standard library writes big integers and escapes unpaired surrogates (\ud800 is
    # valid JSON text); what it cannot write either is logged (by type, never by content).
    try:
        return json.dumps(content, default=str, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode()
    except (TypeError, ValueError, RecursionError):
        log.error("a response could not be written as JSON")
        return None


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        body = dumps(content)
        if body is None:
            self.status_code = 500
            return UNRENDERABLE
        return body
