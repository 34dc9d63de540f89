"""The batch path (spinekg validate --batch, a real process streaming NDJSON) agrees with the
single-claim path (ClaimValidator.validate in process) on thousands of generated claims, and one
bad line yields an error object while the batch goes on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from spinekg.kg.claims import ClaimValidator
from spinekg.kg.claims.sample import random_claims
from spinekg.kg.graph import KnowledgeGraph
from tests.conftest import REPO

BAD_LINES = {5: b'{"lines": [', 17: b'{"lines": [{"code": "22510", "levels": ["L9"]}]}', 40: b"[]"}


@pytest.fixture(scope="module")
def validator(graph: KnowledgeGraph) -> ClaimValidator:
    return ClaimValidator(graph)


@pytest.mark.slow
def test_batch_agrees_with_single_claims(validator: ClaimValidator, tmp_path: Path) -> None:
    claims = random_claims(validator, 3000, seed=11, mistake_rate=0.5)
    lines = [orjson.dumps(c) for c in claims]
    for at, bad in sorted(BAD_LINES.items()):
        lines.insert(at - 1, bad)
    lines.insert(60, b"   ")  # blank lines are skipped, but still counted for line numbers
    path = tmp_path / "claims.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    proc = subprocess.run(
        [sys.executable, "-m", "spinekg.kg.cli", "validate", "--batch", str(path)],
        cwd=REPO,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr  # some lines were unusable
    out = [orjson.loads(x) for x in proc.stdout.splitlines()]
    assert len(out) == len(claims) + len(BAD_LINES)
    errors = [o for o in out if "error" in o]
    assert [e["line"] for e in errors] == sorted(BAD_LINES)
    assert {e["error"]["field"] for e in errors} == {"claim", "lines[0].levels[0]"}
    verdicts = [o for o in out if "error" not in o]
    kinds = {"valid": 0, "invalid": 0}
    for claim, verdict in zip(claims, verdicts, strict=True):
        assert verdict == validator.validate(claim), claim["id"]
        kinds["valid" if verdict["valid"] else "invalid"] += 1
    assert kinds["valid"] > 100 and kinds["invalid"] > 100, "the generated claims exercise both outcomes"


def test_stream_skips_blank_lines_and_keeps_going(validator: ClaimValidator) -> None:
    lines = [
        b'{"id": 1, "date_of_service": "2026-05-05", "lines": [{"code": "22510", "levels": ["T5"]}]}',
        b"",
        b"not json",
        b'{"id": 2, "date_of_service": "2026-05-05", "lines": [{"code": "22515"}]}',
    ]
    out = [(orjson.loads(x), kind) for x, kind in validator.validate_stream(lines)]
    assert [kind for _, kind in out] == ["valid", "error", "invalid"]
    # the message is the parser's own reason, read here from orjson itself (README: "one line naming the field")
    with pytest.raises(orjson.JSONDecodeError) as parse:
        orjson.loads(b"not json")
    reason = parse.value.msg
    assert reason and ":" not in reason, "orjson's reason, without its position"
    expected = {"line": 3, "error": {"field": "claim", "message": f"not valid JSON ({reason})"}}
    assert out[1][0] == expected
    assert [verdict["id"] for verdict, kind in out if kind != "error"] == [1, 2], "the claims around the bad line are checked"
