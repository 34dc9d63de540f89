"""Bounded memos for values that repeat across claims (codes, dates, claim shapes): the keys come from
user input, so each memo is emptied when it reaches its limit rather than growing without bound."""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def remember(cache: dict[K, V], key: K, value: V, limit: int) -> V:
    """Store ``value`` under ``key`` (emptying the memo first when it holds ``limit`` entries); return it."""
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value
    return value
