"""Hostile claims shared by tests/api/test_claims_hostile.py (pass/fail) and bench/ (figures): one
definition of each, so the benchmark measures exactly what the tests check."""

from __future__ import annotations

import json
from typing import Any

VERTEBRAE = [f"C{i}" for i in range(1, 8)] + [f"T{i}" for i in range(1, 13)] + [f"L{i}" for i in range(1, 7)]
VERTEBRAE += [f"S{i}" for i in range(1, 6)] + ["Co"]
DEEP = b"[" * 10_000 + b"]" * 10_000


def claim(lines: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"date_of_service": "2026-05-05", **extra, "lines": lines}


def alternating(n: int) -> list[dict[str, Any]]:
    """n lines alternating two primaries of one family: once a pairwise blow-up of findings."""
    return [{"code": "22510" if i % 2 == 0 else "22511"} for i in range(n)]


def worst(n: int) -> list[dict[str, Any]]:
    """Lines that each trip many rules: every level, four modifiers, units that match nothing."""
    codes = ("22513", "22512", "20225", "77012", "22511")
    return [{"code": codes[i % 5], "modifiers": ["50", "LT", "RT", "80"], "units": 3, "levels": VERTEBRAE} for i in range(n)]


def dump(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()
