"""Source ids (S1, S2 … as in the project's fact sheet) and their natural order."""

from __future__ import annotations

import re

_NUMBER = re.compile(r"S(\d+)")


def source_order(source_id: str) -> tuple[int, str]:
    """Natural order of source ids: S2 before S10; ids of another shape after them, by text."""
    number = _NUMBER.match(source_id)
    return (int(number.group(1)) if number else 10**6, source_id)
