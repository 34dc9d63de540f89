"""The SPARQL worker pool (kg/sparql.py) on its own: how queries travel to the workers (frames on their
pipes) and what happens to queries queued in a worker's pipe when the query ahead of them is slow,
stopped, or abandoned by its caller."""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import orjson
import pytest

from spinekg.kg.graph import KnowledgeGraph
from spinekg.kg.sparql import (
    SparqlBusy,
    SparqlPool,
    SparqlPoolConfig,
    SparqlRequest,
    SparqlResult,
    SparqlTimeout,
    SparqlUnavailable,
    decode_request,
    encode_request,
)

# runs far past any limit here (within one small graph: over all of them, the ICD-10-CM code set too, it
# runs out of memory first)
SLOW = "SELECT (COUNT(*) AS ?n) WHERE { GRAPH <https://w3id.org/spinekg/graph/inferred> { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i } }"
QUICK = "ASK { ?s ?p ?o }"
TRUE = b'{"head":{},"boolean":true}'


@pytest.fixture(scope="module")
def files(graph: KnowledgeGraph) -> tuple[Path, Path]:
    assert graph.build is not None
    return graph.build.asserted_path, graph.build.inferred_path


def run(coroutine: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coroutine, 60))


async def started(pool: SparqlPool, workers: int) -> None:
    assert (await pool.run_async(SparqlRequest(QUICK))).body == TRUE
    while pool.isolation()["ready"] < workers:
        await asyncio.sleep(0.05)


def test_a_request_frame_carries_every_field() -> None:
    request = SparqlRequest(
        "SELECT ?x WHERE { BIND('é\U0001f600' AS ?x) }",
        accept="text/csv",
        formats=("json", "xml"),
        default_graphs=("urn:a",),
        named_graphs=("urn:b", "urn:c"),
        max_rows=7,
        max_bytes=99,
    )
    frame = encode_request(request)
    head_size, body_size = struct.unpack_from("!II", frame)
    assert len(frame) == 8 + head_size + body_size
    message = decode_request(orjson.loads(frame[8 : 8 + head_size]), frame[8 + head_size :])
    assert SparqlRequest(**message, timeout=request.timeout) == request


def test_queries_behind_a_slow_one_move_to_another_worker(files: tuple[Path, Path]) -> None:
    """Quick queries sent right after a slow one may be queued in the slow one's pipe; they are handed to
    the other worker instead of waiting out its time limit."""

    async def scenario() -> None:
        pool = SparqlPool(*files, config=SparqlPoolConfig(workers=2))
        try:
            await started(pool, 2)
            slow = asyncio.ensure_future(pool.run_async(SparqlRequest(SLOW, timeout=3)))
            await asyncio.sleep(0)  # the slow one goes first
            began = time.monotonic()
            quick = await asyncio.gather(*(pool.run_async(SparqlRequest(QUICK, timeout=3)) for _ in range(6)))
            assert [r.body for r in quick] == [TRUE] * 6
            assert time.monotonic() - began < 1.5, "the quick queries waited for the slow one"
            with pytest.raises(SparqlTimeout):
                await slow
        finally:
            pool.close()

    run(scenario())


def test_a_query_queued_behind_a_stopped_one_is_answered_by_the_next_worker(files: tuple[Path, Path]) -> None:
    """One worker: the query queued behind a runaway one had not started when the runaway was stopped; it
    goes back to the queue and the fresh worker answers it, within its own waiting time."""

    async def scenario() -> None:
        pool = SparqlPool(*files, config=SparqlPoolConfig(workers=1))
        try:
            await started(pool, 1)
            slow = asyncio.ensure_future(pool.run_async(SparqlRequest(SLOW, timeout=1)))
            await asyncio.sleep(0)
            quick = await pool.run_async(SparqlRequest(QUICK, timeout=20))
            assert quick.body == TRUE
            with pytest.raises(SparqlTimeout):
                await slow
        finally:
            pool.close()

    run(scenario())


def test_a_query_that_waited_its_whole_time_is_told_to_come_back(files: tuple[Path, Path]) -> None:
    async def scenario() -> None:
        pool = SparqlPool(*files, config=SparqlPoolConfig(workers=1))
        try:
            await started(pool, 1)
            slow = asyncio.ensure_future(pool.run_async(SparqlRequest(SLOW, timeout=1)))
            await asyncio.sleep(0)
            began = time.monotonic()
            with pytest.raises(SparqlBusy):
                await pool.run_async(SparqlRequest(QUICK, timeout=1))
            assert time.monotonic() - began < 5
            with pytest.raises(SparqlTimeout):
                await slow
        finally:
            pool.close()

    run(scenario())


def test_callers_that_go_away_leave_the_workers_answering(files: tuple[Path, Path]) -> None:
    async def scenario() -> None:
        pool = SparqlPool(*files, config=SparqlPoolConfig(workers=1))
        try:
            await started(pool, 1)
            gone = [asyncio.ensure_future(pool.run_async(SparqlRequest(QUICK))) for _ in range(20)]
            await asyncio.sleep(0)
            for task in gone[::2]:
                task.cancel()
            finished = await asyncio.gather(*gone, return_exceptions=True)
            assert all(isinstance(r, asyncio.CancelledError) for r in finished[::2])
            assert all(isinstance(r, SparqlResult) and r.body == TRUE for r in finished[1::2])
            assert (await pool.run_async(SparqlRequest(QUICK))).body == TRUE
        finally:
            pool.close()

    run(scenario())


def test_run_blocks_for_a_caller_without_an_event_loop(files: tuple[Path, Path]) -> None:
    pool = SparqlPool(*files, config=SparqlPoolConfig(workers=1))
    try:
        assert pool.run(SparqlRequest(QUICK)).body == TRUE
        assert pool.run(SparqlRequest("SELECT ?s WHERE { ?s ?p ?o } LIMIT 2", accept="text/csv")).rows == 2
    finally:
        pool.close()
    with pytest.raises(Exception, match="shutting down"):
        pool.run(SparqlRequest(QUICK))


def test_each_query_keeps_its_own_time_limit(files: tuple[Path, Path]) -> None:
    """A short limit after a query with a long one is enforced as it is (the worker's timer is set anew)."""

    async def scenario() -> None:
        pool = SparqlPool(*files, config=SparqlPoolConfig(workers=1))
        try:
            await started(pool, 1)
            assert (await pool.run_async(SparqlRequest(QUICK, timeout=60))).body == TRUE
            began = time.monotonic()
            with pytest.raises(SparqlTimeout):
                await pool.run_async(SparqlRequest(SLOW, timeout=1))
            assert time.monotonic() - began < 5, "the 1 s limit was not kept"
        finally:
            pool.close()

    run(scenario())


def test_a_worker_is_trusted_with_no_more_than_its_answer(files: tuple[Path, Path]) -> None:
    """What a worker sends back becomes a response: a media type of its own choosing (a header) or a
    malformed header is refused, as from a worker that went wrong."""
    pool = SparqlPool(*files)
    for head in (["ok", "text/html\r\nSet-Cookie: x=1", False, 1], ["ok", "text/csv", False, "1"], ["ok", "text/csv"]):
        with pytest.raises(SparqlUnavailable, match="unreadable"):
            pool._result(head, b"")
    assert pool._result(["ok", "text/csv", True, 3], b"a\r\n").truncated
    pool.close()


# within the inferred graph: over every graph (the ICD-10-CM code set too) they would take minutes
SHORTER = "SELECT (COUNT(*) AS ?n) WHERE { GRAPH <https://w3id.org/spinekg/graph/inferred> { ?a ?b ?c . ?d a ?f } }"  # ~0.1 s
LONGER = "SELECT (COUNT(*) AS ?n) WHERE { GRAPH <https://w3id.org/spinekg/graph/inferred> { ?a ?b ?c . ?d ?e ?f } }"  # ~1 s


def test_a_worker_skips_the_queries_moved_away_from_it(graph: KnowledgeGraph, files: tuple[Path, Path]) -> None:
    """A long query queued behind another one is moved to the other worker; the first worker, once its
    own query is answered, does not run it as well, and is free for the next one at once."""

    async def scenario() -> None:
        pool = SparqlPool(*files, config=SparqlPoolConfig(workers=2))
        try:
            await started(pool, 2)
            first = asyncio.ensure_future(pool.run_async(SparqlRequest(SHORTER, timeout=60)))
            await asyncio.sleep(0)
            behind = asyncio.ensure_future(pool.run_async(SparqlRequest(LONGER, timeout=60)))
            await first
            began = time.monotonic()
            assert (await pool.run_async(SparqlRequest(QUICK))).body == TRUE
            assert time.monotonic() - began < 0.25, "the first worker ran the query moved away from it"
            count = next(iter(graph.store.query(LONGER, use_default_graph_as_union=True)))["n"]
            assert f'"value":"{count.value}"'.encode() in (await behind).body
        finally:
            pool.close()

    run(scenario())
