"""From a documented procedure to claim lines (the same contract as `spinekg code`). Records and notes are
health data: never logged; their bodies are capped by SPINEKG_MAX_CLAIM_BYTES (413 before they are parsed),
and the coding runs in a claim thread, off the event loop."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from spinekg.api.capped import CappedRoute
from spinekg.api.responses import JSON
from spinekg.api.routes.claims import TOO_LARGE, _in_worker, _state
from spinekg.api.schemas import CodingResult, ErrorBody, NoteIn, ProcedureRecordIn


class CodingRoute(CappedRoute):
    setting = "max_claim_bytes"
    parse = True
    hint = "send one procedure record or note per request"


router = APIRouter(prefix="/coding", tags=["coding"], route_class=CodingRoute)
RESPONSES: dict[int | str, dict[str, Any]] = {422: {"model": ErrorBody}, **TOO_LARGE}


@router.post(
    "",
    response_model=CodingResult,
    responses=RESPONSES,
    summary="Code a structured procedure record: claim lines, each explained with its rule and sources, and documentation gaps",
)
async def code_record(record: ProcedureRecordIn, request: Request) -> Response:
    service, settings = _state(request)
    body = record.model_dump(exclude_none=True)
    return await _in_worker(request, settings, lambda: JSON(service.code_record(body)))


@router.post(
    "/note",
    response_model=CodingResult,
    responses=RESPONSES,
    summary="Code an operative note: what was read (with character spans), then the same answer as POST /coding",
)
async def code_note(note: NoteIn, request: Request) -> Response:
    service, settings = _state(request)
    fields = note.model_dump(exclude_none=True, exclude={"text"})
    return await _in_worker(request, settings, lambda: JSON(service.code_note(note.text, fields)))
