"""The named queries of queries/api/ are the API (grlc style): listed with their headers and run with
their parameters bound as RDF terms."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from spinekg.api.deps import ServiceDep
from spinekg.api.responses import JSON
from spinekg.api.schemas import ErrorBody, QueryInfo, QueryParams, QueryResult

router = APIRouter(prefix="/queries", tags=["named queries"])
NamePath = Annotated[str, Path(pattern=r"^[a-z0-9-]+$", examples=["pairs-with"])]
RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "no named query of that name in queries/api/"},
    422: {"model": ErrorBody, "description": "a parameter missing, unknown or not of its form"},
}


@router.get("", response_model=list[QueryInfo], summary="Every named query with its summary and parameters")
async def list_queries(service: ServiceDep) -> JSON:
    return JSON([q.describe() for q in service.named_queries()])


def _run(service: ServiceDep, name: str, params: dict[str, str]) -> JSON:
    columns, rows = service.query_table(name, params)
    return JSON({"query": name, "columns": columns, "rows": rows})


@router.get(
    "/{name}",
    response_model=QueryResult,
    responses=RESPONSES,
    summary="Run a named query; parameters as query-string values (e.g. ?code=22512)",
)
async def run_get(name: NamePath, request: Request, service: ServiceDep) -> JSON:
    return _run(service, name, dict(request.query_params))


@router.post(
    "/{name}",
    response_model=QueryResult,
    responses=RESPONSES,
    summary="Run a named query; parameters in a JSON body",
)
async def run_post(name: NamePath, body: QueryParams, service: ServiceDep) -> JSON:
    return _run(service, name, body.params)
