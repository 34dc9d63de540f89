"""Fuzzing the claim contract with hypothesis, in kg (parser and validator) and over HTTP (TestClient).

Inputs: random JSON values, unpaired surrogates, huge integers and floats, deep nesting, and
valid-ish claims with random codes, levels, modifiers, units, dates and ids.

Properties: kg raises nothing but InputError, and a verdict can always be written as JSON; HTTP never
answers 5xx and always answers JSON; findings stay linear in the claim: per rule at most one finding
per line, or per line and one of its levels or modifiers (W below), and so at most (rules x W)
findings and line references in all."""

from __future__ import annotations

import json
from datetime import date
from functools import cache
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spinekg.kg.claims import ClaimValidator
from spinekg.kg.errors import InputError
from spinekg.kg.graph import KnowledgeGraph, load_graph
from tests.api.conftest import TEST_SETTINGS

TODAY = date(2026, 5, 5)


@cache
def known() -> ClaimValidator:
    """The strategies draw codes, levels and modifiers from what the graph knows (read on first use)."""
    return ClaimValidator(load_graph(quiet=True))


def known_codes() -> list[str]:
    return sorted(known().known_values("code"))


def known_modifiers() -> list[str]:
    return sorted(known().known_values("modifier"))


def known_levels() -> list[str]:
    return sorted(known().anatomy.index)


ODD_TEXT = ["\ud800", "\udfff", "a\ud800b", "\x00", "\u202e", "\U0001f600", "", " ", "x" * 70, "ＡＢ", "٣"]
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(ODD_TEXT),
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20
)
deep = st.integers(min_value=0, max_value=1_500).map(nested)
junk = st.one_of(json_values, deep)


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any], percent: int = 80) -> st.SearchStrategy[Any]:
    """``good`` in ``percent`` of draws, else ``bad``: valid-ish claims, so that most reach the rules."""
    return st.integers(0, 99).flatmap(lambda n: good if n < percent else bad)


known_code = st.deferred(lambda: st.sampled_from(known_codes()))
known_level = st.deferred(lambda: st.sampled_from(known_levels()))
known_modifier = st.deferred(lambda: st.sampled_from(known_modifiers()))
codes = mostly(
    known_code,
    st.one_of(known_code.map(str.lower), st.text(min_size=5, max_size=5), st.from_regex(r"[0-9]{5}", fullmatch=True), junk),
    93,
)
levels = mostly(known_level, st.one_of(known_level.map(str.lower), st.sampled_from(ODD_TEXT), junk), 97)
modifiers = mostly(known_modifier, st.one_of(st.text(min_size=2, max_size=2), st.sampled_from(ODD_TEXT), junk), 97)
units = mostly(st.integers(min_value=1, max_value=6), st.one_of(st.integers(), st.floats(), st.booleans(), junk), 95)
dates = mostly(
    st.dates(min_value=date(2010, 1, 1), max_value=date(2030, 12, 31)).map(date.isoformat), st.one_of(st.text(max_size=12), junk)
)
ids = mostly(
    st.one_of(st.text(max_size=10), st.integers(min_value=0, max_value=10**6)),
    st.one_of(st.text(max_size=70), st.integers(min_value=-(2**70), max_value=2**70), st.sampled_from(ODD_TEXT), junk),
    70,
)
places = mostly(st.sampled_from(["11", "22", "24"]), st.one_of(st.text(max_size=3), junk))


@st.composite
def lines(draw: st.DrawFn) -> Any:
    line: dict[str, Any] = {"code": draw(codes)}
    if draw(st.integers(0, 9)) < 7:
        line["levels"] = draw(mostly(st.lists(levels, max_size=4), st.one_of(st.lists(known_level, max_size=33), junk), 95))
    if draw(st.integers(0, 9)) < 3:
        line["modifiers"] = draw(mostly(st.lists(modifiers, max_size=4), st.one_of(st.lists(modifiers, max_size=6), junk), 95))
    if draw(st.integers(0, 9)) < 5:
        line["units"] = draw(units)
    if draw(st.integers(0, 19)) == 0:
        line[draw(st.text(max_size=5))] = draw(junk)
    return line


clean_lines = st.fixed_dictionaries(
    {"code": known_code},
    optional={
        "levels": st.lists(known_level, max_size=5),
        "modifiers": st.lists(known_modifier, max_size=4),
        "units": st.integers(min_value=1, max_value=6),
    },
)


@st.composite
def claims(draw: st.DrawFn) -> Any:
    count = draw(mostly(st.integers(1, 8), st.integers(40, 55), 75))
    line = clean_lines if draw(st.integers(0, 99)) < 40 else lines()  # clean lines: big claims get checked too
    claim: dict[str, Any] = {"lines": draw(mostly(st.lists(line, min_size=count, max_size=count), junk, 95))}
    for key, strategy in (("date_of_service", dates), ("id", ids), ("place_of_service", places)):
        if draw(st.booleans()):
            claim[key] = draw(strategy)
    if draw(st.integers(0, 19)) == 0:
        claim[draw(st.text(max_size=5))] = draw(junk)
    return claim


anything = mostly(claims(), junk, 90)


def budget(claim: dict[str, Any]) -> int:
    """W: one per line, plus one per distinct level and modifier it names."""
    total = 0
    for line in claim["lines"]:
        total += (
            1 + len({json.dumps(v) for v in line.get("levels") or []}) + len({json.dumps(v) for v in line.get("modifiers") or []})
        )
    return total


def assert_linear(claim: dict[str, Any], verdict: dict[str, Any]) -> None:
    orjson.dumps(verdict)  # always writable
    n, w = len(claim["lines"]), budget(claim)
    found = verdict["findings"]
    for rule in {f["rule"] for f in found}:
        assert sum(f["rule"] == rule for f in found) <= w, f"{rule}: more findings than lines, levels and modifiers"
    rules = len(known().rules)
    assert len(found) <= rules * w
    assert sum(len(f["lines"]) for f in found) <= rules * w
    for f in found:
        assert f["lines"] and all(1 <= x <= n for x in f["lines"]) and len(set(f["lines"])) == len(f["lines"])
    if verdict["suggestion"] is not None:
        assert len(verdict["suggestion"]["lines"]) <= 2 * n


@pytest.fixture(scope="module")
def validator(graph: KnowledgeGraph) -> ClaimValidator:
    return ClaimValidator(graph)


@FUZZ
@given(obj=anything)
def test_kg_raises_only_input_errors(validator: ClaimValidator, obj: Any) -> None:
    try:
        verdict = validator.validate(obj, today=TODAY)
    except InputError as exc:
        assert exc.field and exc.detail and len(exc.detail) < 300
        exc.detail.encode("utf-8")
        return
    assert_linear(obj, verdict)


def to_json(obj: Any) -> bytes:
    """JSON text for any drawn value: unpaired surrogates escaped, huge integers written out, NaN and
    infinities as the non-standard literals (hostile input too); deep nesting written by hand."""
    try:
        return json.dumps(obj).encode()
    except (RecursionError, ValueError):
        return b"[" * 3000 + b"]" * 3000


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.binary(max_size=200))
    if kind == 1:
        depth = draw(st.integers(1, 20_000))
        return b'{"lines":[{"code":"22510"}],"x":' + b"[" * depth + b"]" * depth + b"}"
    return to_json(draw(anything))


@FUZZ
@given(body=bodies())
def test_http_never_answers_5xx(client: TestClient, body: bytes) -> None:
    response = client.post("/claims/validate", content=body, headers={"content-type": "application/json"})
    assert response.status_code < 500, response.text[:300]
    answer = response.json()
    if response.status_code == 200:
        assert_linear(json.loads(body), answer)
    else:
        assert response.status_code in (400, 413, 422)
        assert isinstance(answer["detail"], str) and answer["detail"] and "field" in answer


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batch=st.lists(anything, min_size=1, max_size=TEST_SETTINGS.batch_max_claims))
def test_http_batch_never_answers_5xx(client: TestClient, batch: list[Any]) -> None:
    response = client.post(
        "/claims/validate/batch", content=to_json({"claims": batch}), headers={"content-type": "application/json"}
    )
    assert response.status_code < 500, response.text[:300]
    answer = response.json()
    if response.status_code == 200:
        assert len(answer["results"]) == len(batch)
        assert answer["valid"] + answer["invalid"] + answer["unusable"] == len(batch)
        for claim, result in zip(batch, answer["results"], strict=True):
            if "error" not in result:
                assert_linear(claim, result)
    else:
        assert response.status_code in (413, 422) and answer["field"]
