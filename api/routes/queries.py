"""The named queries of queries/api/ are the API (grlc style): listed with their headers and run with
their parameters bound as RDF terms."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from spinekg.api.capped import CappedRoute
from spinekg.api.deps import ServiceDep
from spinekg.api.responses import JSON
from spinekg.api.schemas import ErrorBody, QueryInfo, QueryParams, QueryResult
from spinekg.kg.errors import InputError


class ParamsRoute(CappedRoute):
    """Named-query parameters are a few short values: a body of more than 16 KiB is refused unread."""

    fixed_limit = 16 * 1024
    parse = True
    hint = "a named query takes a few short parameters"


router = APIRouter(prefix="/queries", tags=["named queries"], route_class=ParamsRoute)
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
    repeated = sorted({key for key, _ in request.query_params.multi_items() if len(request.query_params.getlist(key)) > 1})
    if repeated:
        raise InputError(f"param {repeated[0]}", "given more than once; give each parameter once")
    return _run(service, name, dict(request.query_params))


@router.post(
    "/{name}",
    response_model=QueryResult,
    responses=RESPONSES,
    summary="Run a named query; parameters in a JSON body",
)
async def run_post(name: NamePath, body: QueryParams, service: ServiceDep) -> JSON:
    return _run(service, name, body.params)
