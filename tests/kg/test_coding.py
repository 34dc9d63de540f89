"""spinekg code, driven by tests/cases/coding.yaml: every worked example E1-E17 as a structured record and,
where the fact sheet gives its words, as a note; notes in varied clinical styles; unusable input. Every
produced claim goes through the claim validator and must have no errors (or the case's expected ones)."""

from __future__ import annotations

import ast
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from spinekg.api.cli import main as spinekg_main
from spinekg.kg.claims import ClaimValidator
from spinekg.kg.coding import Coder
from spinekg.kg.coding import record as record_module
from spinekg.kg.coding.note import MAX_NOTE_CHARS, MAX_SPANS
from spinekg.kg.coding.tables import CAVITY_STATES
from spinekg.kg.errors import InputError
from spinekg.kg.graph import KnowledgeGraph
from tests.conftest import FIXTURES, REPO, load_cases

TODAY = date(2026, 5, 5)
CASES = load_cases("coding.yaml")
CASE_KEYS = {"id", "why", "record", "note", "fields", "expect"}
EXPECT_KEYS = {"lines", "warnings", "gaps", "no_gaps", "record", "claim_errors", "error_field"}


@pytest.fixture(scope="session")
def validator(graph: KnowledgeGraph) -> ClaimValidator:
    return ClaimValidator(graph)


@pytest.fixture(scope="session")
def coder(graph: KnowledgeGraph, validator: ClaimValidator) -> Coder:
    return Coder(graph, validator)


def describe(line: dict[str, Any]) -> str:
    mods = "".join(f"-{m}" for m in line["modifiers"])
    levels = f" {', '.join(line['levels'])}" if line["levels"] else ""
    return f"{line['code']}{mods} x{line['units']}{levels}"


def run(coder: Coder, case: dict[str, Any]) -> dict[str, Any]:
    if "note" in case:
        return coder.code_note(case["note"], case.get("fields"))
    return coder.code_json(case["record"])


def test_the_case_table_covers_the_worked_examples_and_enough_notes() -> None:
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), "case ids are unique"
    for case in CASES:
        assert set(case) <= CASE_KEYS and set(case["expect"]) <= EXPECT_KEYS, case["id"]
        assert ("record" in case) != ("note" in case), case["id"]
    records = {c["id"].split("-")[0] for c in CASES if "record" in c}
    assert {f"E{n}" for n in range(1, 18)} <= records, "every worked example as a structured record"
    notes = [c for c in CASES if "note" in c]
    assert {f"E{n}" for n in (1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14)} <= {c["id"].split("-")[0] for c in notes}
    assert len([c for c in notes if c["id"].startswith("note-")]) >= 30, "at least 30 further notes"


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_coding_case(coder: Coder, validator: ClaimValidator, case: dict[str, Any]) -> None:
    expect = case["expect"]
    if "error_field" in expect:
        with pytest.raises(InputError) as info:
            run(coder, case)
        assert info.value.field == expect["error_field"] and info.value.detail
        return
    result = run(coder, case)
    assert set(result) == {"lines", "explanations", "documentation_gaps", "warnings", "extracted", "claim"}
    assert [describe(ln) for ln in result["lines"]] == expect["lines"], json.dumps(result["warnings"])[:2000]
    warnings = [w["rule"] for w in result["warnings"]]
    assert set(expect.get("warnings", [])) <= set(warnings), warnings
    gaps = [g["element"] for g in result["documentation_gaps"]]
    assert set(expect.get("gaps", [])) <= set(gaps), gaps
    assert not set(expect.get("no_gaps", [])) & set(gaps), gaps
    check_explanations(result)
    check_extraction(case, result)
    check_claim(validator, result, expect.get("claim_errors", []))
    # what was extracted is a record: sent back as it is, it codes to the same lines
    again = coder.code_json(result["extracted"]["record"])
    assert again["lines"] == result["lines"]


def check_explanations(result: dict[str, Any]) -> None:
    lines = result["lines"]
    explained = [e["line"] for e in result["explanations"] if e["line"] is not None]
    assert explained == list(range(1, len(lines) + 1)), "each line has one explanation, in order"
    for e in result["explanations"]:
        assert e["why"] and e["rules"] and e["sources"], e
        assert all(s["id"] and s["tier"] in {"T1", "T2", "T3", "T4"} for s in e["sources"])
        if e["line"] is None:
            assert e["subject"]
    for gap in result["documentation_gaps"]:
        assert gap["missing"] and gap["requirement"] and gap["why"] and gap["sources"], gap
    for warning in result["warnings"]:
        assert warning["rule"] and warning["message"]
    if not lines:
        assert result["warnings"][0]["rule"] == "nothing-codable" and "nothing to code" in result["warnings"][0]["message"]


def check_extraction(case: dict[str, Any], result: dict[str, Any]) -> None:
    extracted = result["extracted"]
    record = extracted["record"]
    for key, want in (case["expect"].get("record") or {}).items():
        got = record.get(key)
        if isinstance(want, list) and want and isinstance(want[0], dict):
            assert len(got or []) >= len(want), (key, got)
            for have, expected in zip(got, want, strict=False):
                assert {k: have.get(k) for k in expected} == expected, (key, have)
        elif isinstance(want, dict):
            assert {k: (got or {}).get(k) for k in want} == want, (key, got)
        else:
            assert got == want, (key, got)
    if "note" in case:
        text = case["note"]
        assert extracted["source"] == "note"
        for item in extracted["evidence"]:
            assert 0 < len(item["spans"]) <= MAX_SPANS and len(item["text"]) == len(item["spans"]), item
            for (start, end), words in zip(item["spans"], item["text"], strict=True):
                assert text[start:end] == words, "every span points at the words it quotes"
        for item in extracted["not_used"]:
            assert item["why"] and all(text[a:b] == item["text"] for a, b in item["spans"]), item
        levels = {t["level"] for t in record["treatments"] if t.get("level")}
        for item in extracted["evidence"]:
            if item["field"].startswith("treatments[") and item["field"].endswith(".level"):
                assert item["value"] in levels and item["spans"], item
    else:
        assert extracted["source"] == "record" and extracted["evidence"] == []


def check_claim(validator: ClaimValidator, result: dict[str, Any], allowed_errors: list[str]) -> None:
    claim = result["claim"]
    assert claim["lines"] == result["lines"]
    if not claim["lines"]:
        return
    verdict = validator.validate(claim, today=TODAY)
    errors = [f["rule"] for f in verdict["findings"] if f["severity"] == "error"]
    assert sorted(errors) == sorted(allowed_errors), verdict["findings"]


# ---------------------------------------------------------------- unusable input, bounds

BAD_RECORDS = [
    ([1], "record"),
    ({"treatment": []}, "treatment"),
    ({"treatments": [{"levle": "T7"}]}, "treatments[0].levle"),
    ({"treatments": [{"level": "T13"}]}, "treatments[0].level"),
    ({"treatments": [{"level": "T7", "cavity_created": "yes"}]}, "treatments[0].cavity_created"),
    ({"treatments": [{"level": "T7", "device": "spoon"}]}, "treatments[0].device"),
    ({"treatments": [{"level": "T7", "approach": "sideways"}]}, "treatments[0].approach"),
    ({"treatments": "T7"}, "treatments"),
    ({"treatments": [{"level": "T7"}] * 65}, "treatments"),
    ({"imaging": ["xray"]}, "imaging[0]"),
    ({"biopsies": [{"level": "L1", "same_access": 1}]}, "biopsies[0].same_access"),
    ({"sacroplasty": {"injections": "both"}}, "sacroplasty.injections"),
    ({"sacroplasty": {"levels": ["S9"]}}, "sacroplasty.levels[0]"),
    ({"sedation": {"minutes": -1}}, "sedation.minutes"),
    ({"sedation": {"minutes": 20.5}}, "sedation.minutes"),
    ({"necessity": {"pain_score": 11}}, "necessity.pain_score"),
    ({"date_of_service": "2026-02-30"}, "date_of_service"),
    ({"diagnoses": ["M80.08XA"] * 13}, "diagnoses"),
    ({"state": "x" * 65}, "state"),
]


@pytest.mark.parametrize(("record", "field"), BAD_RECORDS, ids=[f for _, f in BAD_RECORDS])
def test_unusable_record_names_the_field(coder: Coder, record: Any, field: str) -> None:
    with pytest.raises(InputError) as info:
        coder.code_json(record)
    assert info.value.field == field and info.value.detail


@pytest.mark.parametrize("text", [None, 12, ["a note"], "x" * (MAX_NOTE_CHARS + 1)], ids=["null", "number", "list", "too-long"])
def test_unusable_note_names_the_text(coder: Coder, text: Any) -> None:
    with pytest.raises(InputError) as info:
        coder.code_note(text)
    assert info.value.field == "text"


HOSTILE_NOTES = {
    "levels-only": "L1, " * (MAX_NOTE_CHARS // 4 - 1),
    "ranges": "kyphoplasty T1-L5 and C1 through Co; " * (MAX_NOTE_CHARS // 40),
    "cues": "no not without prior plan " * (MAX_NOTE_CHARS // 26),
    "parentheses": "vertebroplasty L2 (" * (MAX_NOTE_CHARS // 20),
    "one-long-word": "a" * MAX_NOTE_CHARS,
    "punctuation": ".;:-/()" * (MAX_NOTE_CHARS // 7),
    "bullets": "LEVELS:\n" + "- L1\n" * (MAX_NOTE_CHARS // 6),
    "groups-apart": "L1 x " * (MAX_NOTE_CHARS // 5),
    "one-level-named-thousands-of-times": "kyphoplasty L1 x " * (MAX_NOTE_CHARS // 17),
    "every-kind-repeated": "biopsy T4 (bilateral) cement L2 with balloon; " * (MAX_NOTE_CHARS // 47),
    "nested-parentheses": "(L1 (" * (MAX_NOTE_CHARS // 5),
    "unicode": "ſ\u00e9\u2014\ud7ff\U0001f600 T7 kyphoplasty\u0000\u202e " * (MAX_NOTE_CHARS // 30),
}


@pytest.mark.parametrize("name", list(HOSTILE_NOTES))
def test_hostile_notes_are_bounded(coder: Coder, name: str) -> None:
    """The largest notes of repeated levels, cues and punctuation are read and answered in bounded size."""
    text = HOSTILE_NOTES[name]
    assert len(text) <= MAX_NOTE_CHARS
    result = coder.code_note(text)
    assert len(result["extracted"]["record"]["treatments"]) <= 64
    assert all(len(e["spans"]) <= MAX_SPANS for e in result["extracted"]["evidence"])
    assert len(json.dumps(result)) < 2_000_000


# ---------------------------------------------------------------- the vocabulary is data


def test_the_note_reader_reads_its_words_from_the_graph(coder: Coder) -> None:
    """No phrase of the vocabulary is a string literal of the reader or the engine (docstrings aside)."""
    phrases = {p for p, _ in coder.tables.phrases}
    assert {"IBT", "KP", "VP", "PMMA", "balloon", "inflatable bone tamp", "curette", "no"} <= phrases
    # the slots and record fields are the structure the words fill, not words
    structure = {t.slot for t in coder.tables.terms.values()} | set(CAVITY_STATES)
    for name in ("RECORD_KEYS", "TREATMENT_KEYS", "BIOPSY_KEYS", "SACROPLASTY_KEYS", "SEDATION_KEYS", "NECESSITY_KEYS"):
        structure |= set(getattr(record_module, name))
    structure |= {"level", "levels"}  # the record's and the answer's own keys
    words = {p.lower() for p in phrases if any(c.isalnum() for c in p)} - structure
    for name in ("note.py", "engine.py", "record.py", "tables.py"):
        tree = ast.parse((REPO / "kg" / "coding" / name).read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        literals = {
            node.value.lower()
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
        }
        assert not literals & words, f"{name}: {sorted(literals & words)} are vocabulary: they belong in ontology/note-terms.ttl"


def test_record_values_are_the_vocabulary(coder: Coder) -> None:
    parser = coder.parser
    assert set(parser.devices.values()) == {"balloon", "curette", "mechanical device"}
    assert set(parser.sides.values()) == {"unilateral", "bilateral"}
    assert {"fluoroscopy", "ct"} <= set(parser.modalities.values())


# ---------------------------------------------------------------- the command line

CLI = [
    (["code", str(FIXTURES / "coding" / "e4-record.json")], 0, ['"code": "22513"', '"code": "22515"', '"units": 2'], ""),
    (["code", "--note", str(FIXTURES / "coding" / "e14-note.txt")], 0, ['"code": "22511"', '"spans"'], ""),
    (["code", "--note", str(FIXTURES / "coding" / "no-procedure-note.txt")], 1, ['"nothing-codable"'], "nothing to code"),
    (["code", str(FIXTURES / "coding" / "bad-level.json")], 2, [], "treatments[0].level"),
    (["code", str(FIXTURES / "coding" / "e14-note.txt")], 2, [], "record: not valid JSON"),
    (["code", str(FIXTURES / "coding" / "e4-record.json"), "--state", "OR"], 2, [], "--state"),
    (["code", "--note", str(FIXTURES / "coding" / "nowhere.txt")], 2, [], "FILE"),
]


@pytest.mark.parametrize(("args", "status", "stdout", "stderr"), CLI, ids=[" ".join(a[:2]) + f" -> {s}" for a, s, _, _ in CLI])
def test_cli(
    args: list[str], status: int, stdout: list[str], stderr: str, capsys: pytest.CaptureFixture[str], graph, monkeypatch
) -> None:
    monkeypatch.chdir(REPO)
    assert spinekg_main(args) == status
    out, err = capsys.readouterr()
    for text in stdout:
        assert text in out
    assert stderr in err
    if status:
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_unusable_input_is_refused_without_the_claim_rules(graph: KnowledgeGraph) -> None:
    """Unusable input is refused from the coding tables alone (the claim rules load on first use)."""
    coder = Coder(graph)
    with pytest.raises(InputError):
        coder.code_json({"treatments": [{"level": "X1"}]})
    assert coder._validator is None


def test_fixture_files_exist() -> None:
    assert all(
        (FIXTURES / "coding" / name).is_file()
        for name in ("e4-record.json", "e14-note.txt", "no-procedure-note.txt", "bad-level.json")
    )
    assert isinstance(json.loads(Path(FIXTURES / "coding" / "e4-record.json").read_text()), dict)
