"""Small wording helpers shared by the claim rules and the fact pages."""

from __future__ import annotations

from collections.abc import Iterable


def either(items: Iterable[str]) -> str:
    """ "A", "A or B", "A, B or C" (duplicates dropped, order kept); "" for none."""
    values = list(dict.fromkeys(items))
    if len(values) <= 1:
        return "".join(values)
    return ", ".join(values[:-1]) + " or " + values[-1]


def some_of(ordered: list[str], shown: int = 5) -> str:
    """``either`` of a list, or its first ``shown`` items and how many others when it is longer."""
    if len(ordered) > shown + 1:
        return f"{', '.join(ordered[:shown])} and {len(ordered) - shown} others"
    return either(ordered)
