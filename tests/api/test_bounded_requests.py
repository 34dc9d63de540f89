"""Requests an attacker sent to a live server (issue 7's review): each is refused quickly with a small
JSON error naming the field, whatever its size."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

JSON_TYPE = {"content-type": "application/json"}
LINE = {"code": "22510", "levels": ["T10"]}

CASES: list[tuple[str, Callable[[TestClient], Any], int, str | None]] = [
    (
        "a text/plain claim (a browser's simple cross-origin POST) is refused",
        lambda c: c.post("/claims/validate", content=json.dumps({"lines": [LINE]}), headers={"content-type": "text/plain"}),
        415,
        "Content-Type",
    ),
    (
        "a form-encoded batch is refused",
        lambda c: c.post(
            "/claims/validate/batch", content=b"claims=1", headers={"content-type": "application/x-www-form-urlencoded"}
        ),
        415,
        "Content-Type",
    ),
    (
        "a million-item batch is refused on its length before any item is read",
        lambda c: c.post("/claims/validate/batch", content=b'{"claims":[' + b"1," * 999_999 + b"1]}", headers=JSON_TYPE),
        422,
        "claims",
    ),
    (
        "a claim of 30,000 bad lines lists a bounded number of problems",
        lambda c: c.post("/claims/validate", content=b'{"lines":[' + b"1," * 29_999 + b"1]}", headers=JSON_TYPE),
        422,
        "lines",
    ),
    (
        "a named-query parameter body over 16 KiB is refused unread",
        lambda c: c.post("/queries/codes", content=b'{"params":{"family":"' + b"a" * 200_000 + b'"}}', headers=JSON_TYPE),
        413,
        None,
    ),
    (
        "a named-query parameter longer than any code or name is refused",
        lambda c: c.get("/queries/codes", params={"family": "a" * 5_000}),
        422,
        "param family",
    ),
    (
        "a repeated named-query parameter is refused, not silently the last one",
        lambda c: c.get("/queries/pairs-with?code=22512&code=22510"),
        422,
        "param code",
    ),
]


@pytest.mark.parametrize(("why", "send", "status", "field"), CASES, ids=[c[0] for c in CASES])
def test_bounded(client: TestClient, why: str, send: Callable[[TestClient], Any], status: int, field: str | None) -> None:
    started = time.monotonic()
    response = send(client)
    assert response.status_code == status, response.text[:300]
    body = response.json()
    assert body["field"] == field and body["detail"]
    assert len(response.content) < 8_000, "the answer is bounded whatever the request holds"
    assert len(body.get("errors", [])) <= 20
    assert time.monotonic() - started < 5
