"""POST /coding and POST /coding/note: the same answers as `spinekg code`, 422 naming the field for
unusable input (never a 5xx), 413 for a body over the cap, and the claims' CORS policy (health data)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from spinekg.api.schemas import NOTE_EXAMPLE, RECORD_EXAMPLE, CodingResult
from spinekg.kg.coding.note import MAX_NOTE_CHARS

ORIGIN = "https://yasgui.example"


def lines(answer: dict[str, Any]) -> list[tuple[str, int, list[str], list[str]]]:
    return [(ln["code"], ln["units"], ln["levels"], ln["modifiers"]) for ln in answer["lines"]]


def test_a_record_is_coded(client: TestClient) -> None:
    response = client.post("/coding", json=RECORD_EXAMPLE)
    assert response.status_code == 200
    answer = response.json()
    CodingResult.model_validate(answer)
    assert lines(answer) == [("22513", 1, ["T7"], []), ("22515", 2, ["L3", "L4"], []), ("20225", 1, ["L1"], ["XS"])]
    assert answer["claim"]["lines"] == answer["lines"] and answer["claim"]["date_of_service"] == "2026-05-05"
    assert all(e["sources"] for e in answer["explanations"])
    verdict = client.post("/claims/validate", json=answer["claim"]).json()
    assert verdict["valid"], verdict["findings"]


def test_a_note_is_coded_with_its_spans(client: TestClient) -> None:
    response = client.post("/coding/note", json=NOTE_EXAMPLE)
    assert response.status_code == 200
    answer = response.json()
    CodingResult.model_validate(answer)
    assert lines(answer) == [("22513", 1, ["T7"], []), ("22515", 2, ["L3", "L4"], []), ("20225", 1, ["L1"], ["XS"])]
    text = NOTE_EXAMPLE["text"]
    assert answer["extracted"]["source"] == "note"
    for item in answer["extracted"]["evidence"]:
        assert [text[a:b] for a, b in item["spans"]] == item["text"]
    # what was read, sent back as a record, gives the same lines
    again = client.post("/coding", json=answer["extracted"]["record"]).json()
    assert again["lines"] == answer["lines"]


def test_nothing_codable_is_an_answer_that_says_why(client: TestClient) -> None:
    answer = client.post("/coding/note", json={"text": "Clinic visit. Kyphoplasty was recommended; risks were discussed."}).json()
    assert answer["lines"] == [] and answer["warnings"][0]["rule"] == "nothing-codable"


BAD = [
    ("/coding", {"treatments": [{"levle": "T7"}]}, "treatments[0].levle"),
    ("/coding", {"treatment": []}, "treatment"),
    ("/coding", {"treatments": [{"level": "T7", "cavity_created": "yes"}]}, "treatments[0].cavity_created"),
    ("/coding", {"treatments": [{"level": "T13"}]}, "treatments[0].level"),
    ("/coding", {"treatments": [{"level": "T7", "device": "spoon"}]}, "treatments[0].device"),
    ("/coding", {"imaging": ["x-ray"]}, "imaging[0]"),
    ("/coding", {"sedation": {"minutes": -5}}, "sedation.minutes"),
    ("/coding", {"treatments": [{"level": "T7"}] * 65}, "treatments"),
    ("/coding", {"date_of_service": "5 May 2026"}, "date_of_service"),
    ("/coding", [RECORD_EXAMPLE], "body"),
    ("/coding/note", {"txt": "L1 kyphoplasty"}, "text"),
    ("/coding/note", {"text": 12}, "text"),
    ("/coding/note", {"text": "x" * (MAX_NOTE_CHARS + 1)}, "text"),
    ("/coding/note", {"text": "L1 kyphoplasty", "date_of_service": "2026-13-01"}, "date_of_service"),
]


@pytest.mark.parametrize(("path", "body", "field"), BAD, ids=[f"{p} {f}" for p, _, f in BAD])
def test_unusable_input_is_a_422_naming_the_field(client: TestClient, path: str, body: Any, field: str) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


@pytest.mark.parametrize("path", ["/coding", "/coding/note"])
def test_bodies_over_the_cap_are_refused_unread(client: TestClient, path: str) -> None:
    body = b'{"text": "' + b"L1 " * 30_000 + b'"}'
    assert len(body) > 65536
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "SPINEKG_MAX_CLAIM_BYTES" in response.json()["detail"]


@pytest.mark.parametrize("path", ["/coding", "/coding/note"])
def test_not_json_and_not_a_json_type(client: TestClient, path: str) -> None:
    broken = client.post(path, content=b'{"text": ', headers={"content-type": "application/json"})
    assert broken.status_code == 422 and broken.json()["field"] == "body"
    plain = client.post(path, content=b"L1 kyphoplasty", headers={"content-type": "text/plain"})
    assert plain.status_code == 415


@pytest.mark.parametrize("path", ["/coding", "/coding/note"])
def test_cors_treats_coding_as_health_data(client: TestClient, path: str) -> None:
    preflight = client.options(path, headers={"origin": ORIGIN, "access-control-request-method": "POST"})
    assert preflight.status_code == 400 and "access-control-allow-origin" not in preflight.headers
    cross = client.post(path, json=NOTE_EXAMPLE if path.endswith("note") else RECORD_EXAMPLE, headers={"origin": ORIGIN})
    assert cross.status_code == 200 and "access-control-allow-origin" not in cross.headers


def test_the_routes_are_documented(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in ("/coding", "/coding/note"):
        operation = spec["paths"][path]["post"]
        assert {"200", "413", "422"} <= set(operation["responses"])
