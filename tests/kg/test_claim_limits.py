"""Bounded, linear claim checking in kg: the line limit, ids that can always be written back, hostile
JSON, findings that grow linearly with the claim (never one per pair of lines), a bounded suggestion
loop, and NDJSON lines read with a byte limit."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from spinekg.kg.claims import ClaimValidator, engine
from spinekg.kg.claims.engine import LineTooLong, read_ndjson
from spinekg.kg.claims.limits import MAX_CLAIM_BYTES, MAX_CLAIM_LINES, claim_limits, limit_from_env
from spinekg.kg.errors import InputError
from spinekg.kg.graph import KnowledgeGraph
from tests.conftest import REPO

TODAY = date(2026, 5, 5)


@pytest.fixture(scope="module")
def validator(graph: KnowledgeGraph) -> ClaimValidator:
    return ClaimValidator(graph)


@pytest.fixture(scope="module")
def unlimited(graph: KnowledgeGraph) -> ClaimValidator:
    """A validator without the 837P line limit, to see how the work grows with the claim."""
    return ClaimValidator(graph, max_lines=100_000)


def claim(lines: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"date_of_service": "2026-05-05", **extra, "lines": lines}


def alternating(n: int) -> list[dict[str, Any]]:
    """The reported claim: primaries of one family, alternating (once 1,002,003 findings for 2,000 lines)."""
    return [{"code": "22510" if i % 2 == 0 else "22511"} for i in range(n)]


def vertebrae(v: ClaimValidator) -> list[str]:
    return sorted(v.anatomy.index, key=v.anatomy.index.__getitem__)


# ---------------------------------------------------------------------------------------------- line limit


def test_the_default_limit_is_the_837p_limit(validator: ClaimValidator) -> None:
    assert MAX_CLAIM_LINES == 50 and validator.max_lines == 50
    assert validator.validate(claim(alternating(50)), today=TODAY)["valid"] is False  # checked, not refused
    with pytest.raises(InputError) as info:
        validator.validate(claim(alternating(51)), today=TODAY)
    assert info.value.field == "lines" and "51 lines" in info.value.detail and "at most 50" in info.value.detail


def test_the_limit_is_refused_before_any_line_is_read(validator: ClaimValidator) -> None:
    started = time.perf_counter()
    with pytest.raises(InputError) as info:
        validator.validate(claim([{"code": object()}] * 300_000), today=TODAY)  # lines that would not parse
    assert info.value.field == "lines" and time.perf_counter() - started < 0.05


def test_a_limit_per_validator_and_per_call(graph: KnowledgeGraph, validator: ClaimValidator) -> None:
    small = ClaimValidator(graph, max_lines=2)
    with pytest.raises(InputError, match="at most 2"):
        small.validate(claim(alternating(3)), today=TODAY)
    with pytest.raises(InputError, match="at most 3"):
        validator.validate(claim(alternating(4)), today=TODAY, max_lines=3)
    assert validator.validate(claim(alternating(60)), today=TODAY, max_lines=60)["findings"]


def test_a_line_names_at_most_one_level_per_vertebra(validator: ClaimValidator) -> None:
    levels = vertebrae(validator)
    verdict = validator.validate(claim([{"code": "22512", "units": len(levels), "levels": levels}]), today=TODAY)
    assert verdict["findings"] and {tuple(f["lines"]) for f in verdict["findings"]} == {(1,)}, "checked, not refused"
    with pytest.raises(InputError) as info:
        validator.validate(claim([{"code": "22512", "levels": [*levels, "L1"]}]), today=TODAY)
    assert info.value.field == "lines[0].levels" and str(len(levels)) in info.value.detail


@pytest.mark.parametrize(
    ("environ", "expected"),
    [({}, (MAX_CLAIM_LINES, MAX_CLAIM_BYTES)), ({"SPINEKG_MAX_CLAIM_LINES": "7", "SPINEKG_MAX_CLAIM_BYTES": "4096"}, (7, 4096))],
)
def test_limits_from_the_environment(monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], expected: tuple[int, int]) -> None:
    monkeypatch.delenv("SPINEKG_MAX_CLAIM_LINES", raising=False)
    monkeypatch.delenv("SPINEKG_MAX_CLAIM_BYTES", raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    assert claim_limits() == expected
    assert claim_limits(3, 9) == (3, 9), "an explicit value (a CLI option) wins"


@pytest.mark.parametrize("value", ["0", "-1", "ten", "1e3", "²", "9" * 40])
def test_a_bad_limit_in_the_environment_names_the_variable(value: str) -> None:
    with pytest.raises(InputError) as info:
        limit_from_env("SPINEKG_MAX_CLAIM_LINES", 50, environ={"SPINEKG_MAX_CLAIM_LINES": value})
    assert info.value.field == "SPINEKG_MAX_CLAIM_LINES" and len(str(info.value)) < 120


# ---------------------------------------------------------------------------------------------- ids and echoes

GOOD_IDS = ["c1", "a" * 64, "Grüße-€-漢字", 0, 2**63 - 1, -(2**63)]
BAD_IDS = ["\ud800", "x\udfff", "a" * 65, "tab\there", "nul\x00", "\x85", 2**63, -(2**63) - 1, 10**30, 1e30, 1.5, True, [], {}]


@pytest.mark.parametrize("claim_id", GOOD_IDS, ids=repr)
def test_ids_that_are_echoed(validator: ClaimValidator, claim_id: Any) -> None:
    verdict = validator.validate(claim([{"code": "22510", "levels": ["T5"]}], id=claim_id), today=TODAY)
    assert verdict["id"] == claim_id
    assert orjson.loads(orjson.dumps(verdict))["id"] == claim_id, "a verdict can always be written as JSON"


@pytest.mark.parametrize("claim_id", BAD_IDS, ids=repr)
def test_ids_that_cannot_be_written_back_are_refused(validator: ClaimValidator, claim_id: Any) -> None:
    with pytest.raises(InputError) as info:
        validator.validate(claim([{"code": "22510"}], id=claim_id), today=TODAY)
    assert info.value.field == "id"
    info.value.detail.encode("utf-8")  # the message itself is writable (an unpaired surrogate is escaped)


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ({"code": "2" * 1_000_000}, "lines[0].code"),
        ({"code": "22510", "modifiers": ["X" * 1_000_000]}, "lines[0].modifiers[0]"),
        ({"code": "22510", "levels": ["T" * 1_000_000]}, "lines[0].levels[0]"),
        ({"code": "22510", "units": 10**5000}, "lines[0].units"),
        ({"code": "22510", "units": float("inf")}, "lines[0].units"),
        ({"code": "\ud800" * 5}, "lines[0].code"),
        ({"code": "22510", "levels": [[[["T5"]]]]}, "lines[0].levels[0]"),
    ],
    ids=["code", "modifier", "level", "huge-units", "inf-units", "surrogate-code", "nested-level"],
)
def test_errors_quote_only_a_short_escaped_prefix(validator: ClaimValidator, line: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as info:
        validator.validate(claim([line]), today=TODAY)
    assert info.value.field == field
    assert len(info.value.detail) < 160 and info.value.detail.isprintable()
    info.value.detail.encode("utf-8")


# ---------------------------------------------------------------------------------------------- hostile JSON text

HOSTILE_TEXT = {
    "units-1e400": (b'{"lines":[{"code":"22510","units":1e400}]}', "lines[0].units"),
    "id-10^30": (b'{"id":1000000000000000000000000000000,"lines":[{"code":"22510"}]}', "id"),
    "id-lone-surrogate": (b'{"id":"\\ud800","lines":[{"code":"22510"}]}', "id"),
    "deep-unknown-field": (b'{"lines":[{"code":"22510"}],"x":' + b"[" * 10_000 + b"]" * 10_000 + b"}", "claim"),
    "deep-lines": (b'{"lines":' + b"[" * 5_000 + b"]" * 5_000 + b"}", "claim"),
    "nan": (b'{"lines":[{"code":"22510","units":NaN}]}', "claim"),
    "not-utf8": (b'{"lines":[{"code":"\xff\xfe"}]}', "claim"),
    "5MB-id": (b'{"id":"' + b"a" * 5_000_000 + b'","lines":[{"code":"22510"}]}', "claim"),
    "truncated": (b'{"lines": [', "claim"),
}


@pytest.mark.parametrize("name", list(HOSTILE_TEXT))
def test_hostile_json_text_is_an_input_error(validator: ClaimValidator, name: str) -> None:
    text, field = HOSTILE_TEXT[name]
    with pytest.raises(InputError) as info:
        validator.validate_json(text, today=TODAY)
    assert info.value.field == field, info.value.detail


# ---------------------------------------------------------------------------------------------- linear findings


def test_the_reported_claim_is_one_finding_per_rule(unlimited: ClaimValidator) -> None:
    """2,000 alternating primaries: once 1,002,003 findings (1.2 GB); now one conflict of one family."""
    started = time.perf_counter()
    verdict = unlimited.validate(claim(alternating(2000)), today=TODAY)
    elapsed = time.perf_counter() - started
    (conflict,) = [f for f in verdict["findings"] if f["rule"] == "multiple-primaries-same-family"]
    assert conflict["lines"] == list(range(1, 2001))
    per_rule: dict[str, int] = {}
    for f in verdict["findings"]:
        per_rule[f["rule"]] = per_rule.get(f["rule"], 0) + 1
    assert per_rule == {
        "multiple-primaries-same-family": 1,
        "units-exceed-limit": 2,
        "bodies-exceed-coverage-guideline": 1,
        "levels-missing": 2000,  # a per-line rule: one finding per line
    }
    assert len(orjson.dumps(verdict)) < 2_000_000 and elapsed < 2.0


def _worst(v: ClaimValidator) -> Callable[[int], dict[str, Any]]:
    """Lines that each trip many rules: every level, four forbidden modifiers, units that match nothing,
    and codes that bundle with each other at every level."""
    levels = vertebrae(v)
    codes = ("22513", "22512", "20225", "77012", "22511", "22514", "22310", "22510")
    return lambda n: claim(
        [{"code": codes[i % len(codes)], "modifiers": ["50", "LT", "RT", "80"], "units": 3, "levels": levels} for i in range(n)]
    )


def _random(v: ClaimValidator) -> Callable[[int], dict[str, Any]]:
    import random

    # A vocabulary both sizes saturate: what is measured is growth with the lines, not with the number of
    # distinct codes (the PTP edits among any set of codes are bounded by the table's rows, a constant).
    known = sorted(v.known_values("code"))
    codes = sorted(random.Random(0).sample(known, min(len(known), 48)))
    modifiers = sorted(v.known_values("modifier"))
    levels = vertebrae(v)

    def make(n: int) -> dict[str, Any]:
        rng = random.Random(n)
        return claim(
            [
                {
                    "code": rng.choice(codes),
                    "modifiers": rng.sample(modifiers, 4),
                    "units": rng.randint(1, 999),
                    "levels": rng.sample(levels, rng.randint(0, len(levels))),
                }
                for _ in range(n)
            ],
            date_of_service="2014-06-01",
        )

    return make


@pytest.mark.parametrize("shape", ["alternating", "worst", "random"])
def test_findings_grow_linearly_with_the_lines(unlimited: ClaimValidator, shape: str) -> None:
    """Eight times the lines: at most about eight times the findings, the line references, the bytes
    and the time (a pairwise checker would make them 64 times)."""
    make = {"alternating": lambda n: claim(alternating(n)), "worst": _worst(unlimited), "random": _random(unlimited)}[shape]

    def measure(n: int) -> tuple[int, int, int, float]:
        c = make(n)
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            verdict = unlimited.validate(c, today=TODAY)
            best = min(best, time.perf_counter() - started)
        refs = sum(len(f["lines"]) for f in verdict["findings"])
        return len(verdict["findings"]), refs, len(orjson.dumps(verdict)), best

    small, large = measure(100), measure(800)
    for name, a, b in zip(("findings", "line references", "bytes"), small, large, strict=False):
        assert b <= 8 * 1.3 * a, f"{name}: {a} for 100 lines, {b} for 800"
    assert large[3] <= 8 * 3 * small[3] + 0.05, f"time: {small[3]:.4f}s for 100 lines, {large[3]:.4f}s for 800"


def test_each_rule_reports_a_group_of_lines_at_most_once(unlimited: ClaimValidator) -> None:
    """Per rule, at most one finding per line, or per line and level or modifier it names."""
    for make in (_worst(unlimited), _random(unlimited)):
        c = make(200)
        verdict = unlimited.validate(c, today=TODAY)
        budget = sum(1 + len(set(ln.get("levels", []))) + len(set(ln.get("modifiers", []))) for ln in c["lines"])
        assert verdict["findings"], "these lines trip many rules: an empty verdict would check nothing below"
        for rule in {f["rule"] for f in verdict["findings"]}:
            found = [f for f in verdict["findings"] if f["rule"] == rule]
            assert len(found) <= budget, rule
            keys = [(tuple(f["lines"]), f["message"]) for f in found]
            assert len(keys) == len(set(keys)), f"{rule} repeats a finding"


# ---------------------------------------------------------------------------------------------- suggestions


def test_the_suggestion_loop_is_bounded(validator: ClaimValidator, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    findings = validator.findings

    def counting(c: Any) -> Any:
        nonlocal calls
        calls += 1
        return findings(c)

    monkeypatch.setattr(validator, "findings", counting)
    two_primaries = [{"code": "22510", "levels": ["T10"]}, {"code": "22511", "levels": ["L2"]}]  # README's example
    suggested = 0
    for make in (_worst(validator), _random(validator), lambda n: claim(alternating(n)), lambda n: claim(two_primaries)):
        calls = 0
        c = make(50)
        verdict = validator.validate(c, today=TODAY)
        assert calls <= 1 + engine.MAX_REPAIR_ROUNDS
        if verdict["suggestion"] is not None:
            suggested += 1
            assert len(verdict["suggestion"]["lines"]) <= engine.MAX_SUGGESTION_GROWTH * len(c["lines"])
    assert suggested, "no claim above got a suggestion: the bound on its size was never checked"


def test_a_suggestion_that_would_outgrow_the_claim_is_withheld(
    validator: ClaimValidator, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = claim([{"code": "22511", "units": 3}])  # repaired by a split into two lines (units-and-levels.yaml)
    assert validator.validate(c, today=TODAY)["suggestion"] is not None
    monkeypatch.setattr(engine, "MAX_SUGGESTION_GROWTH", 1)
    assert validator.validate(c, today=TODAY)["suggestion"] is None


# ---------------------------------------------------------------------------------------------- NDJSON


class EndlessLine(io.RawIOBase):
    """A stream holding one line of ``size`` bytes (never in memory at once), then a short claim."""

    def __init__(self, size: int, tail: bytes) -> None:
        self.left = size
        self.tail = tail

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.left > 0:
            n = min(len(buffer), self.left)
            buffer[:n] = b"x" * n
            self.left -= n
            if self.left == 0:
                buffer[n - 1 : n] = b"\n"
            return n
        n = min(len(buffer), len(self.tail))
        buffer[:n], self.tail = self.tail[:n], self.tail[n:]
        return n


def test_a_huge_ndjson_line_is_skipped_in_bounded_memory(validator: ClaimValidator) -> None:
    good = b'{"id": 2, "date_of_service": "2026-05-05", "lines": [{"code": "22510", "levels": ["T5"]}]}\n'
    stream = io.BufferedReader(EndlessLine(50_000_000, good), buffer_size=65536)
    tracemalloc.start()
    try:
        out = [(orjson.loads(x), kind) for x, kind in validator.validate_stream(stream)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [kind for _, kind in out] == ["error", "valid"]
    assert out[0][0]["line"] == 1 and out[0][0]["error"]["field"] == "claim" and "50000000 bytes" in out[0][0]["error"]["message"]
    assert out[1][0]["id"] == 2
    assert peak < 4 * MAX_CLAIM_BYTES + 1_000_000, f"{peak:,} bytes held for a 50 MB line"


def test_read_ndjson_keeps_lines_up_to_the_limit() -> None:
    data = b"a" * 10 + b"\n" + b"b" * 11 + b"\n" + b"c" * 10
    out = list(read_ndjson(io.BytesIO(data), max_bytes=11))
    assert out[0] == b"a" * 10 + b"\n" and out[1] == b"b" * 11 + b"\n" and out[2] == b"c" * 10
    out = list(read_ndjson(io.BytesIO(data), max_bytes=10))
    assert isinstance(out[1], LineTooLong) and out[1].size == 12 and out[2] == b"c" * 10


def test_each_ndjson_line_is_bounded_like_a_claim(graph: KnowledgeGraph) -> None:
    v = ClaimValidator(graph, max_lines=3, max_bytes=200)
    lines = [
        orjson.dumps(claim(alternating(3), id=1)),
        orjson.dumps(claim(alternating(4), id=2)),
        orjson.dumps(claim([{"code": "22510", "levels": ["T5"]}], id="x" * 300)),
        orjson.dumps(claim([{"code": "22510", "levels": ["T5"]}], id=4)),
    ]
    out = [(orjson.loads(x), kind) for x, kind in v.validate_stream(lines, today=TODAY)]
    assert [kind for _, kind in out] == ["invalid", "error", "error", "valid"]
    with pytest.raises(InputError) as single:  # the same claim on the single-claim path
        v.validate(claim(alternating(4), id=2), today=TODAY)
    assert out[1][0] == {"line": 2, "error": {"field": "lines", "message": single.value.detail}}
    assert "4 lines" in single.value.detail and "at most 3" in single.value.detail
    assert out[2][0]["line"] == 3 and "at most 200" in out[2][0]["error"]["message"]


# ---------------------------------------------------------------------------------------------- the CLI


def _cli(args: list[str], stdin: bytes, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "spinekg.kg.cli", "validate", *args],
        input=stdin,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_the_cli_honours_the_line_limit(tmp_path: Path) -> None:
    text = json.dumps(claim(alternating(3))).encode()
    for args, env in ((["--max-lines", "2"], None), ([], {"SPINEKG_MAX_CLAIM_LINES": "2"})):
        proc = _cli([*args, "-"], text, env)
        assert proc.returncode == 2 and proc.stdout == b""
        (line,) = proc.stderr.decode().splitlines()
        assert line.startswith("spinekg: error: lines: 3 lines") and "at most 2" in line
    proc = _cli(["--max-lines", "nine", "-"], text)
    assert proc.returncode == 2 and "--max-lines" in proc.stderr.decode()


@pytest.mark.slow
def test_the_cli_batch_bounds_each_line() -> None:
    good = json.dumps(claim([{"code": "22510", "levels": ["T5"]}], id=1)).encode()
    ndjson = b"\n".join(
        [good, b'{"lines": [' + b'{"code": "22510"},' * 10_000 + b"]}", json.dumps(claim(alternating(51))).encode(), good]
    )
    proc = _cli(["--batch", "--max-bytes", "65536", "-"], ndjson + b"\n")
    assert proc.returncode == 2, proc.stderr
    out = [orjson.loads(x) for x in proc.stdout.splitlines()]
    assert [o.get("line") for o in out] == [None, 2, 3, None]
    assert out[1]["error"]["field"] == "claim" and "at most 65536" in out[1]["error"]["message"]
    assert out[2]["error"]["field"] == "lines"


def test_typo_hints_are_bounded_per_claim(validator: ClaimValidator) -> None:
    """A "did you mean" costs a fuzzy match over every known code: the first MAX_HINTS distinct
    unknown codes of a claim get one, so that a claim of 50 made-up codes stays cheap."""
    from spinekg.kg.claims.kinds import MAX_HINTS

    near = [f"2251{d}" for d in range(6, 10)] + [f"2252{d}" for d in range(6, 10)] + ["22898", "22897"]
    verdict = validator.validate(claim([{"code": c} for c in near + near]), today=TODAY)
    hinted = [f["lines"][0] for f in verdict["findings"] if f["rule"] == "unknown-code" and "did you mean" in f["fix"]]
    assert hinted == [*range(1, MAX_HINTS + 1), *range(len(near) + 1, len(near) + MAX_HINTS + 1)], hinted
