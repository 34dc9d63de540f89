"""Known values one keystroke away from a mistyped one ("did you mean 22512?"), by a deletion index
(as in SymSpell): each known value is filed under itself and under every spelling with one character
dropped, so a lookup costs a handful of dictionary probes however many values are known (the full
NCCI code set as well as our forty codes)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable


def _deletions(value: str) -> set[str]:
    return {value[:i] + value[i + 1 :] for i in range(len(value))}


class NearValues:
    def __init__(self, values: Iterable[str]) -> None:
        index: dict[str, set[str]] = defaultdict(set)
        for value in values:
            index[value].add(value)
            for shorter in _deletions(value):
                index[shorter].add(value)
        self._index = dict(index)

    def near(self, value: str, limit: int = 3) -> list[str]:
        """Known values one character replaced, dropped, added or swapped with its neighbour away from
        ``value``; when there are none, those the index finds two edits away; at most ``limit``."""
        found: set[str] = set()
        for probe in (value, *_deletions(value)):
            found.update(self._index.get(probe, ()))
        found.discard(value)
        close = sorted(known for known in found if _one_edit(value, known))
        return (close or sorted(found))[:limit]


def _one_edit(a: str, b: str) -> bool:
    """Whether b is one replacement, drop, addition or neighbour swap away from a (the index also
    finds some values two edits away; they come after these)."""
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (
            len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
        )
    if abs(len(a) - len(b)) != 1:
        return False
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))
