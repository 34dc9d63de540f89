"""Hostile requests to the claim routes: each is a quick 4xx (or a bounded 200) with a JSON body naming
the field, never a 5xx; bodies over the cap are refused before they are parsed; checking runs off the
event loop, so /healthz answers while a big claim or a full batch is checked (on a real server)."""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from spinekg.api.main import create_app
from spinekg.api.settings import Settings
from spinekg.kg.graph import KnowledgeGraph
from tests.api.conftest import LiveServer
from tests.hostile_claims import DEEP, POLLER, VERTEBRAE, alternating, claim, dump, worst

SETTINGS = Settings(batch_max_claims=1000, max_claim_bytes=64 * 1024, batch_max_bytes=256 * 1024, sparql_workers=1)


@pytest.fixture(scope="module")
def app_client(graph: KnowledgeGraph) -> Iterator[TestClient]:
    """An app of its own (its service may be patched here), with a 256 KiB batch cap."""
    with TestClient(create_app(SETTINGS, graph=graph), raise_server_exceptions=False) as test_client:
        yield test_client


def nested_list(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


LINE = b'{"code":"22510","levels":["T5"]}'

# (case, body, status, field): every hostile body the issue listed, and their relatives
SINGLE: list[tuple[str, Callable[[], bytes], int, str | None]] = [
    ("2,000 alternating primaries (38 kB)", lambda: dump(claim(alternating(2000))), 422, "lines"),
    ("51 lines, one over the 837P limit", lambda: dump(claim(alternating(51))), 422, "lines"),
    ("300,000 lines (9.9 MB)", lambda: dump(claim([{"code": "22510"}] * 300_000)), 413, None),
    ("lone surrogate id", lambda: b'{"id":"\\ud800","lines":[' + LINE + b"]}", 422, "id"),
    ("id 10^30", lambda: b'{"id":1000000000000000000000000000000,"lines":[' + LINE + b"]}", 422, "id"),
    ("id 2^64-1", lambda: b'{"id":18446744073709551615,"lines":[' + LINE + b"]}", 422, "id"),
    ("id of 65 characters", lambda: b'{"id":"' + b"a" * 65 + b'","lines":[' + LINE + b"]}", 422, "id"),
    ("id with a NUL", lambda: b'{"id":"a\\u0000b","lines":[' + LINE + b"]}", 422, "id"),
    ("id true", lambda: b'{"id":true,"lines":[' + LINE + b"]}", 422, "id"),
    ("id of 60 kB", lambda: b'{"id":"' + b"a" * 60_000 + b'","lines":[' + LINE + b"]}", 422, "id"),
    ("id of 5 MB", lambda: b'{"id":"' + b"a" * 5_000_000 + b'","lines":[' + LINE + b"]}", 413, None),
    ("units 1e400", lambda: b'{"lines":[{"code":"22510","units":1e400}]}', 422, "lines[0].units"),
    ("units 10^400", lambda: b'{"lines":[{"code":"22510","units":1' + b"0" * 400 + b"}]}", 422, "lines[0].units"),
    ("units NaN", lambda: b'{"lines":[{"code":"22510","units":NaN}]}', 422, "body"),
    ("10,000-deep array in an unknown field", lambda: b'{"lines":[' + LINE + b'],"x":' + DEEP + b"}", 422, "body"),
    ("900-deep array in an unknown field", lambda: b'{"lines":[' + LINE + b'],"x":' + b"[" * 900 + b"]" * 900 + b"}", 422, "x"),
    ("900-deep array as a line", lambda: b'{"lines":[' + b"[" * 900 + b"]" * 900 + b"]}", 422, "lines[0]"),
    ("surrogate code", lambda: b'{"lines":[{"code":"\\ud800\\ud800\\ud800\\ud800\\ud800"}]}', 422, "lines[0].code"),
    ("surrogate modifier", lambda: b'{"lines":[{"code":"22510","modifiers":["\\udfff"]}]}', 422, "lines[0].modifiers[0]"),
    ("surrogate level", lambda: b'{"lines":[{"code":"22510","levels":["\\ud800"]}]}', 422, "lines[0].levels[0]"),
    (
        "60 kB modifier",
        lambda: b'{"lines":[{"code":"22510","modifiers":["' + b"X" * 60_000 + b'"]}]}',
        422,
        "lines[0].modifiers[0]",
    ),
    ("32 levels on a line", lambda: dump(claim([{"code": "22512", "levels": [*VERTEBRAE, "L1"]}])), 422, "lines[0].levels"),
    ("bytes that are not UTF-8", lambda: b'{"lines":[{"code":"\xff\xfe"}]}', 422, "body"),
    ("not JSON", lambda: b"{lines:", 422, "body"),
    ("JSON, not an object", lambda: b"[1, 2]", 422, "body"),
]


@pytest.mark.parametrize(("case", "body", "status", "field"), SINGLE, ids=[c[0] for c in SINGLE])
def test_hostile_claim(app_client: TestClient, case: str, body: Callable[[], bytes], status: int, field: str | None) -> None:
    data = body()
    started = time.perf_counter()
    response = app_client.post("/claims/validate", content=data, headers={"content-type": "application/json"})
    elapsed = time.perf_counter() - started
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith("application/json")
    answer = response.json()
    if status >= 400:
        assert answer["field"] == field, answer
        assert isinstance(answer["detail"], str) and 0 < len(answer["detail"]) < 600, answer["detail"][:100]
        assert len(response.content) < 2000, "an error never echoes the input"
    assert elapsed < 1.0, f"{case}: {elapsed:.2f}s"


def test_the_line_limit_is_named_in_the_answer(app_client: TestClient) -> None:
    answer = app_client.post("/claims/validate", json=claim(alternating(2000))).json()
    assert answer["field"] == "lines" and "2000 lines" in answer["detail"] and "at most 50" in answer["detail"]
    assert app_client.post("/claims/validate", json=claim(alternating(50))).status_code == 200


def test_a_worst_case_50_line_claim_is_bounded(app_client: TestClient) -> None:
    started = time.perf_counter()
    response = app_client.post("/claims/validate", json=claim(worst(50)))
    elapsed = time.perf_counter() - started
    assert response.status_code == 200 and elapsed < 1.0
    verdict = response.json()
    assert len(verdict["findings"]) <= 20 * 50 * 4 and len(response.content) < 1_000_000


# ------------------------------------------------------------------------------------------- body caps


@pytest.mark.parametrize(
    ("path", "cap"), [("/claims/validate", SETTINGS.max_claim_bytes), ("/claims/validate/batch", SETTINGS.batch_max_bytes)]
)
def test_the_cap_is_exact(app_client: TestClient, path: str, cap: int) -> None:
    body = dump({"claims": [claim(alternating(2))]} if path.endswith("batch") else claim(alternating(2)))
    at_cap = body + b" " * (cap - len(body))
    assert app_client.post(path, content=at_cap, headers={"content-type": "application/json"}).status_code == 200
    response = app_client.post(path, content=at_cap + b" ", headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert str(cap) in response.json()["detail"]


@pytest.mark.parametrize("path", ["/claims/validate", "/claims/validate/batch"])
def test_a_streamed_body_is_counted_as_it_arrives(app_client: TestClient, path: str) -> None:
    """No Content-Length (chunked): refused once the bytes received pass the cap, before the rest is parsed."""
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        yield b'{"claims":[' if path.endswith("batch") else b'{"lines":['
        for _ in range(2_000):
            piece = b'{"code":"22510"},' * 600  # 10 kB
            sent += len(piece)
            yield piece
        yield b'{"code":"22510"}]}' + (b"]}" if path.endswith("batch") else b"")

    response = app_client.post(path, content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and "larger than" in response.json()["detail"]


@pytest.mark.parametrize(("declared", "status"), [("9" * 40, 413), ("abc", 200), ("-5", 200)])
def test_an_odd_content_length_is_never_a_5xx(app_client: TestClient, declared: str, status: int) -> None:
    """A length too long to be true is over the cap; one that is not a number is ignored (the bytes are counted)."""
    headers = {"content-type": "application/json", "content-length": declared}
    response = app_client.post("/claims/validate", content=dump(claim(alternating(2))), headers=headers)
    assert response.status_code == status, response.text[:200]


# ------------------------------------------------------------------------------------------- batches


def test_hostile_claims_in_a_batch_get_error_objects(app_client: TestClient) -> None:
    body = (
        b'{"claims":['
        + b'{"id":"\\ud800","lines":[' + LINE + b"]},"
        + b'{"id":1000000000000000000000000000000,"lines":[' + LINE + b"]},"
        + dump(claim(alternating(51))) + b","
        + b'{"lines":[' + LINE + b'],"x":' + b"[" * 900 + b"]" * 900 + b"},"
        + b'{"lines":[{"code":"22510","modifiers":["' + b"X" * 100_000 + b'"]}]},'
        + b'{"lines":[{"code":"22510","units":1e400}]},'
        + dump(claim(alternating(50), id=7))
        + b"]}"
    )  # fmt: skip
    response = app_client.post("/claims/validate/batch", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text[:300]
    answer = response.json()
    fields = [r["error"]["field"] if "error" in r else None for r in answer["results"]]
    assert fields == ["id", "id", "lines", "x", "lines[0].modifiers[0]", "lines[0].units", None]
    assert [r["index"] for r in answer["results"] if "error" in r] == [0, 1, 2, 3, 4, 5]
    assert answer["results"][6]["id"] == 7 and (answer["valid"], answer["invalid"], answer["unusable"]) == (0, 1, 6)
    assert all(len(r["error"]["message"]) < 200 for r in answer["results"] if "error" in r)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{claims:", "body"),
        (b'{"claims":' + DEEP + b"}", "body"),
        (b'{"claims":"all"}', "claims"),
        (b'{"claims":[]}', "claims"),
        (b'{"claims":[1]}', "claims[0]"),
        (b"[]", "body"),
        (b"", "body"),
        (dump({"claims": [claim(alternating(1))] * 1001}), "claims"),
    ],
    ids=["not-json", "deep", "not-a-list", "empty", "not-an-object", "not-an-object-body", "empty-body", "1001-claims"],
)
def test_an_unusable_batch_is_a_422_naming_the_field(app_client: TestClient, body: bytes, field: str) -> None:
    response = app_client.post("/claims/validate/batch", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text[:300]
    assert response.json()["field"] == field


def test_a_streamed_batch_keeps_indexes_and_counts_across_chunks(app_client: TestClient) -> None:
    """200 claims with ~36 kB verdicts: written in several chunks, and still one JSON document."""
    claims: list[Any] = [claim(alternating(50), id=i) for i in range(200)]
    for i in (0, 37, 111, 199):
        claims[i] = {"id": i, "lines": []}
    for i in (5, 150):
        claims[i] = claim([{"code": "22510", "levels": ["T5"]}], id=i)
    response = app_client.post("/claims/validate/batch", json={"claims": claims})
    assert response.status_code == 200
    assert len(response.content) > 4 * 256 * 1024, "the answer spans several chunks"
    answer = response.json()
    assert [r["index"] for r in answer["results"] if "error" in r] == [0, 37, 111, 199]
    assert [r["id"] for r in answer["results"] if "id" in r] == [i for i in range(200) if i not in (0, 37, 111, 199)]
    assert (answer["valid"], answer["invalid"], answer["unusable"]) == (2, 194, 4)


# ------------------------------------------------------------------------------------------- off the event loop


def test_claims_are_checked_off_the_event_loop(app_client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    service = app_client.app.state.service  # type: ignore[attr-defined]
    validate = service.validator.validate
    seen: list[bool] = []

    def watched(*args: Any, **kwargs: Any) -> Any:
        try:
            asyncio.get_running_loop()
            seen.append(True)
        except RuntimeError:
            seen.append(False)
        return validate(*args, **kwargs)

    monkeypatch.setattr(service.validator, "validate", watched)
    assert app_client.post("/claims/validate", json=claim(alternating(2))).status_code == 200
    assert app_client.post("/claims/validate/batch", json={"claims": [claim(alternating(2))] * 3}).status_code == 200
    assert seen == [False] * 4, "a claim was checked on the event loop thread"


def test_healthz_answers_while_batches_run(app_client: TestClient) -> None:
    """Three 256 KiB batches of worst-case lines at once, on one claim thread: /healthz is not held up."""
    body = dump({"claims": [claim(worst(50))] * 21})
    assert len(body) <= SETTINGS.batch_max_bytes
    done = threading.Event()
    statuses: list[int] = []

    def post() -> None:
        statuses.append(
            app_client.post("/claims/validate/batch", content=body, headers={"content-type": "application/json"}).status_code
        )

    threads = [threading.Thread(target=post) for _ in range(3)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    latencies = []
    while any(t.is_alive() for t in threads):
        t0 = time.perf_counter()
        assert app_client.get("/healthz").status_code == 200
        latencies.append(time.perf_counter() - t0)
        time.sleep(0.01)
    for t in threads:
        t.join()
    done.set()
    elapsed = time.perf_counter() - started
    assert statuses == [200, 200, 200]
    assert len(latencies) >= 5, f"the batches took {elapsed:.2f}s"
    assert statistics.median(latencies) < 0.1, latencies


def _healthz_during(live_server: LiveServer, work: Callable[[], None]) -> list[float]:
    """/healthz latencies (ms), polled every 10 ms from a process of its own while ``work`` runs."""
    poller = subprocess.Popen(
        [sys.executable, "-c", POLLER, live_server.url + "/healthz"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        time.sleep(0.3)
        work()
    finally:
        out, _ = poller.communicate("", timeout=60)
    latencies: list[float] = json.loads(out)
    return latencies


def _post(url: str, body: bytes) -> tuple[int, int]:
    request = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as response:
        size = 0
        while piece := response.read(1 << 20):
            size += len(piece)
        return response.status, size


@pytest.mark.slow
def test_healthz_stays_quick_on_a_real_server(live_server: LiveServer) -> None:
    """`spinekg serve` with its defaults: a full batch (1,000 claims of 50 lines) and worst-case
    50-line claims; /healthz meanwhile stays under 100 ms (the median well under, and the slowest
    poll far below the second or more the work takes, which a blocked event loop would show)."""
    outcomes: list[tuple[int, int, float]] = []

    def full_batch() -> None:
        body = dump({"claims": [claim(alternating(50), id=i) for i in range(1000)]})
        started = time.perf_counter()
        status, size = _post(live_server.url + "/claims/validate/batch", body)
        outcomes.append((status, size, time.perf_counter() - started))

    def big_claims() -> None:
        body = dump(claim(worst(50)))
        started = time.perf_counter()
        for _ in range(60):
            status, size = _post(live_server.url + "/claims/validate", body)
            assert status == 200
        outcomes.append((status, size, time.perf_counter() - started))

    for work in (full_batch, big_claims):
        latencies = _healthz_during(live_server, work)
        status, size, seconds = outcomes[-1]
        assert status == 200 and size > 100_000
        assert len(latencies) >= 10, f"{work.__name__}: {seconds:.2f}s, {len(latencies)} polls"
        ordered = sorted(latencies)
        p90 = ordered[int(len(ordered) * 0.9)]
        assert p90 < 100, f"{work.__name__}: /healthz p90 {p90:.0f} ms ({seconds:.2f}s of work)"
        assert ordered[-1] < min(500, 1000 * seconds / 2), f"{work.__name__}: slowest /healthz {ordered[-1]:.0f} ms"


# ------------------------------------------------------------------------------------------- the JSON writer


@pytest.mark.parametrize(
    ("content", "status"),
    [
        ({"id": 10**30}, 200),
        ({"id": "\ud800"}, 200),
        ({"x": object()}, 200),
        ({"x": nested_list(600)}, 200),
        ({"x": float("nan"), "y": 10**30}, 500),
        ({"x": nested_list(5000)}, 500),
    ],
    ids=["big-int", "lone-surrogate", "object", "deep", "nan-and-big-int", "too-deep"],
)
def test_the_json_writer_never_raises(content: Any, status: int) -> None:
    """The last resort behind every route: odd values are written anyway, or become a JSON 500."""
    from spinekg.api.responses import JSON

    response = JSON(content)
    assert response.status_code == status
    written = json.loads(response.body)
    if status == 200:  # the values themselves, as the standard library writes them (str() for the rest)
        assert written == json.loads(json.dumps(content, default=str))
    else:
        assert list(written) == ["detail"] and "could not be written" in written["detail"], written
