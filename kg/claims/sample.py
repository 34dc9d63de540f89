"""Random claims for load tests and differential tests, drawn from what the graph knows (codes,
coverage, vertebrae, modifiers): mostly well-formed coding patterns, with a share of mistakes."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from spinekg.kg.claims.engine import ClaimValidator
from spinekg.kg.claims.kinds import DateWindow, LevelCoverage, RequiresPartner


def random_claims(validator: ClaimValidator, n: int, seed: int = 1, mistake_rate: float = 0.2) -> list[dict[str, Any]]:
    """``mistake_rate`` of the claims get random extra lines, modifiers or codes (most of them are
    then invalid); the rest follow the usual shape: a primary and its add-on over neighbouring
    levels that the codes cover, sometimes with sedation."""
    rng = random.Random(seed)  # noqa: S311 - sample data, not security
    codes = sorted(validator.known_values("code"))
    modifiers = sorted(validator.known_values("modifier"))
    addons: dict[str, frozenset[str]] = {}  # add-on -> the primaries it always pairs with (the family rules)
    coverage: dict[str, set[str]] = {}
    windows = []
    for checker in validator.checkers:
        if isinstance(checker, RequiresPartner) and not checker.others:
            for addon, partners in checker.always.items():
                addons[addon] = addons.get(addon, frozenset()) | partners
        elif isinstance(checker, LevelCoverage):
            for code, vertebrae in checker.covers.items():
                coverage.setdefault(code, set()).update(vertebrae)
        elif isinstance(checker, DateWindow):
            windows.append(checker.window)
    index = validator.anatomy.index
    order = sorted(index, key=index.__getitem__)

    def current(code: str, when: date) -> bool:
        for window in windows:
            start, end = window.get(code, (None, None))
            if (end is not None and when >= end) or (start is not None and when < start):
                return False
        return True

    today = date(2026, 1, 1)
    families = [
        (a, sorted(p for p in addons[a] if p in coverage and current(p, today)))
        for a in sorted(addons)
        if a in coverage and current(a, today)
    ]
    families = [(a, ps) for a, ps in families if ps]
    start = date(2017, 1, 1)
    claims = []
    for i in range(n):
        lines: list[dict[str, Any]] = []
        dos = start + timedelta(days=rng.randrange(10 * 365))
        addon, primaries = rng.choice(families)
        primary = rng.choice(primaries)
        first = rng.choice(sorted(coverage[primary], key=index.__getitem__))
        after = [v for v in order[index[first] :] if v in coverage[addon]][: rng.randint(0, 2)]
        lines.append({"code": primary, "units": 1, "levels": [first]})
        if after:
            lines.append({"code": addon, "units": len(after), "levels": after})
        mistaken = rng.random() < mistake_rate
        if mistaken:
            dos = date(2013, 1, 1) + timedelta(days=rng.randrange(14 * 365))
            for _ in range(rng.randint(1, 2)):
                line: dict[str, Any] = {"code": rng.choice(codes), "units": rng.choice((1, 1, 2, 3))}
                if rng.random() < 0.7:
                    line["levels"] = rng.sample(order, k=min(line["units"], 3))
                lines.append(line)
            for line in lines:
                if rng.random() < 0.2:
                    line["modifiers"] = rng.sample(modifiers, k=rng.randint(1, 2))
                if rng.random() < 0.05:
                    line["code"] = f"{rng.randrange(10000, 99999)}"
        claims.append({"id": f"c{i}", "lines": lines, "date_of_service": dos.isoformat()})
    return claims
