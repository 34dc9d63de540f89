"""Claim validation (the same contract as `spinekg validate`). Claim bodies are never logged.

Every request is bounded work that never holds up the event loop:

* a body larger than SPINEKG_MAX_CLAIM_BYTES (one claim) or SPINEKG_BATCH_MAX_BYTES (a batch) is
  refused with 413 before it is parsed: on its Content-Length, else as soon as the bytes received
  pass the cap (a chunked body is counted as it arrives);
* a claim of more than SPINEKG_MAX_CLAIM_LINES lines is refused (422 naming ``lines``; in a batch,
  an error object for that claim);
* the check itself (and, for a batch, parsing the body and writing the answer) runs in a worker
  thread, at most SPINEKG_CLAIM_THREADS at once; further requests wait for a thread without blocking
  the other routes;
* a batch answer is streamed, about CHUNK_BYTES at a time, so that memory does not grow with the
  findings of the whole batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from spinekg.api.capped import CappedRoute
from spinekg.api.responses import JSON, dumps
from spinekg.api.schemas import BatchRequest, BatchResponse, Claim, ErrorBody, RuleInfo, RuleKind, Verdict
from spinekg.api.settings import Settings
from spinekg.kg.claims.parse import load_json
from spinekg.kg.errors import InputError
from spinekg.kg.service import KnowledgeService

T = TypeVar("T")
CHUNK_BYTES = 256 * 1024  # a batch's results are computed and sent about this much at a time
Counts = dict[str, int]


CLAIMS_HINT = "split the claims into smaller requests, or use spinekg validate --batch for large files"


class ClaimRoute(CappedRoute):
    setting = "max_claim_bytes"
    parse = True
    hint = CLAIMS_HINT


class BatchRoute(CappedRoute):
    setting = "batch_max_bytes"
    hint = CLAIMS_HINT


router = APIRouter(prefix="/claims", tags=["claims"])


def _executor(request: Request, settings: Settings) -> ThreadPoolExecutor:
    """The app's claim threads: at most ``settings.claim_threads`` checks at once, in an executor of
    their own, so that claims never take the threads other routes use; further work waits in its
    queue (each item bounded by the body caps), not on the event loop."""
    state = request.app.state
    executor: ThreadPoolExecutor | None = getattr(state, "claim_executor", None)
    if executor is None:  # created on the event loop, on first use (no await between test and set)
        executor = state.claim_executor = ThreadPoolExecutor(settings.claim_threads, thread_name_prefix="spinekg-claims")
    return executor


async def _in_worker(request: Request, settings: Settings, work: Callable[[], T]) -> T:
    """Run CPU-bound claim work in a claim thread, off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(_executor(request, settings), work)


def _state(request: Request) -> tuple[KnowledgeService, Settings]:
    """The app's service and settings. Read here rather than through the sync dependencies of
    api/deps.py, which FastAPI would run in the shared thread pool (a thread hop each, per request)."""
    return request.app.state.service, request.app.state.settings


async def validate(claim: Claim, request: Request) -> Response:
    service, settings = _state(request)
    body = claim.model_dump(exclude_none=True)
    return await _in_worker(request, settings, lambda: JSON(service.validate(body, max_lines=settings.max_claim_lines)))


def _parse_batch(raw: bytes, settings: Settings) -> list[dict[str, Any]]:
    """The claims of a batch body (in a worker thread): 422 for a body that is not a batch."""
    data = load_json(raw, field="body")
    claims = data.get("claims") if isinstance(data, dict) else None
    if isinstance(claims, list) and len(claims) > settings.batch_max_claims:  # before any claim is read
        raise InputError(
            "claims",
            f"{len(claims)} claims; at most {settings.batch_max_claims} per request "
            "(use spinekg validate --batch for large files)",
        )
    try:
        batch = BatchRequest.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False, include_input=False)) from None
    return batch.claims


def _next_chunk(results: Iterator[dict[str, Any]], counts: Counts) -> bytes:
    """Check claims of a batch until about CHUNK_BYTES of results are written (in a worker thread);
    each result is preceded by a comma; empty when no claim is left."""
    out: list[bytes] = []
    size = 0
    for result in results:
        body = dumps(result)
        if body is None:  # not for what kg returns (it checks ids); but never a broken stream
            index = counts["valid"] + counts["invalid"] + counts["unusable"]
            result = {"index": index, "error": {"field": "claim", "message": "the verdict could not be written"}}
            body = orjson.dumps(result)
        counts["unusable" if "error" in result else "valid" if result["valid"] else "invalid"] += 1
        out.append(b"," + body)
        size += len(body)
        if size >= CHUNK_BYTES:
            break
    return b"".join(out)


async def validate_batch(request: Request) -> Response:
    service, settings = _state(request)
    raw = await request.body()  # capped: SPINEKG_BATCH_MAX_BYTES
    claims = await _in_worker(request, settings, lambda: _parse_batch(raw, settings))
    results = service.iter_validate(claims, max_lines=settings.max_claim_lines)
    executor = _executor(request, settings)
    loop = asyncio.get_running_loop()

    async def stream() -> AsyncIterator[bytes]:
        # The answer is written as it is computed, about CHUNK_BYTES at a time, so that memory holds
        # one chunk of verdicts however many findings the batch has; between chunks the event loop
        # runs (and stops the work if the client has gone), and other requests get the claim threads.
        counts: Counts = {"valid": 0, "invalid": 0, "unusable": 0}
        yield b'{"results":['
        first = True
        while chunk := await loop.run_in_executor(executor, _next_chunk, results, counts):
            yield chunk[1:] if first else chunk
            first = False
        yield b'],"valid":%d,"invalid":%d,"unusable":%d}' % (counts["valid"], counts["invalid"], counts["unusable"])

    return StreamingResponse(stream(), media_type="application/json")


TOO_LARGE: dict[int | str, dict[str, Any]] = {413: {"model": ErrorBody, "description": "the body is larger than the cap"}}
router.add_api_route(
    "/validate",
    validate,
    methods=["POST"],
    response_model=Verdict,
    responses={422: {"model": ErrorBody}, **TOO_LARGE},
    summary="Check one claim: valid?, findings with rule, lines, message, fix and sources, and a suggestion",
    description="At most SPINEKG_MAX_CLAIM_LINES lines (default 50) and SPINEKG_MAX_CLAIM_BYTES bytes (default 64 KiB).",
    route_class_override=ClaimRoute,
)
router.add_api_route(
    "/validate/batch",
    validate_batch,
    methods=["POST"],
    response_model=BatchResponse,
    responses={422: {"model": ErrorBody}, **TOO_LARGE},
    summary="Check up to SPINEKG_BATCH_MAX_CLAIMS claims; an unusable claim gets an error object",
    description="At most SPINEKG_BATCH_MAX_CLAIMS claims (default 1000) and SPINEKG_BATCH_MAX_BYTES bytes (default 2 MiB); "
    "each claim at most SPINEKG_MAX_CLAIM_LINES lines. The body is parsed in a worker thread, not by the framework.",
    # the body is read (capped) and parsed by the route, off the event loop, so it is described here
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": BatchRequest.model_json_schema()}},
        }
    },
    route_class_override=BatchRoute,
)


@router.get(
    "/rules", response_model=list[RuleInfo], summary="The claim rules: kind, severity, templates, repair and sources of each"
)
def rules(request: Request) -> Response:
    return JSON(request.app.state.service.rules())


@router.get(
    "/rule-kinds",
    response_model=list[RuleKind],
    summary="The rule kinds: the table each reads, its template variables, cases and repairs, and its rules",
)
def rule_kinds(request: Request) -> Response:
    return JSON(request.app.state.service.rule_kinds())
