"""SPARQL 1.1 Protocol endpoint, read-only: queries by GET ?query=, POST form or POST
application/sparql-query; the dataset from default-graph-uri / named-graph-uri (else FROM / FROM NAMED,
else the union of the asserted and the inferred graph); results by Accept (q-values honoured) or by the
`format` / `output` / `results` parameters SPARQLWrapper, Virtuoso and Fuseki send; the service
description (Turtle, JSON-LD, RDF/XML) when no query is given.

Queries are awaited on the SPARQL pool's own queue (kg.sparql), never on the server's threadpool: a
flood of slow queries gets 503s with Retry-After while every other route goes on answering.

Both operations are answered by ``answer_request`` alone (``LeanRoute``): FastAPI documents them from
their signatures but solves no dependency and validates no parameter per request. Every parameter is
read from the query string or the form as a list (repeated values mean the same in GET and POST), so
the validation was never used, and it (with two dependencies run in the threadpool) cost /sparql about
a third of its time (bench/sparql_bench.py)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine, Sequence
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Query, Request
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from spinekg.api.responses import JSON
from spinekg.api.settings import Settings
from spinekg.kg.errors import InputError
from spinekg.kg.service import KnowledgeService
from spinekg.kg.sparql import (
    GRAPH_FORMATS,
    SELECT_FORMATS,
    SERVICE_DESCRIPTION_TYPES,
    TURTLE,
    SparqlNotAcceptable,
    SparqlPoolConfig,
    SparqlProtocolError,
    SparqlRequest,
    best_type,
    cap_accept,
    format_type,
    service_description,
)


class LeanRoute(APIRoute):
    """A documented operation answered by ``answer_request`` with the bare Request: no dependency
    solving, no parameter validation (the endpoint functions declare their parameters for the OpenAPI
    document only, and call the same ``answer_request``). Errors are raised to the app's exception
    handlers, as from any route; a method the route does not take is left to FastAPI (405)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return answer_request

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in (self.methods or ()):
            await super().handle(scope, receive, send)
            return
        response = await answer_request(Request(scope, receive, send))
        await response(scope, receive, send)


router = APIRouter(tags=["SPARQL"], route_class=LeanRoute)

FORMAT_PARAMETERS = ("format", "output", "results")
UPDATE_REFUSED = {"detail": "updates are refused: the SPARQL endpoint is read-only", "field": "update"}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"example": {"detail": description, "field": "query"}}},
    }


SPARQL_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "results, or the service description when no query is given",
        "content": {media: {} for media in [*SELECT_FORMATS, *GRAPH_FORMATS]},
    },
    400: _error("the query does not parse, or a graph name is not an IRI"),
    403: _error("updates, LOAD and SERVICE are refused"),
    406: _error("no acceptable result format"),
    413: _error("the result is larger than the byte limit of one answer"),
    415: _error("POST needs application/sparql-query or a form"),
    422: _error("the query is too long or missing"),
    503: _error("the query ran past the time or memory limit, or too many queries are waiting (Retry-After)"),
}


# Query strings parsed, by their raw bytes: clients send the same queries over and over, and unquoting a
# SELECT of a few hundred characters costs more than the rest of the route. Long ones are parsed each time,
# so that the cache holds at most QUERY_STRING_CACHE_SIZE x QUERY_STRING_CACHE_LENGTH bytes of keys.
QUERY_STRING_CACHE_SIZE, QUERY_STRING_CACHE_LENGTH = 256, 16_384


def _parse_query_string(raw: bytes) -> tuple[tuple[str, str], ...]:
    # as Starlette's Request.query_params reads it
    return tuple(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))


_cached_query_string = functools.lru_cache(maxsize=QUERY_STRING_CACHE_SIZE)(_parse_query_string)


def query_params(raw: bytes) -> list[tuple[str, str]]:
    """The parameters of a query string, in order, repeated ones repeated."""
    return list(_cached_query_string(raw) if len(raw) <= QUERY_STRING_CACHE_LENGTH else _parse_query_string(raw))


def _values(params: Sequence[tuple[str, str]], name: str) -> list[str]:
    return [v for k, v in params if k == name]


def _protocol_request(params: Sequence[tuple[str, str]], accept: str | None, settings: Settings) -> SparqlRequest | None:
    """The SPARQL request the protocol parameters make (None: no query, the service description)."""
    queries = _values(params, "query")
    if len(queries) > 1:
        raise SparqlProtocolError("give one query per request, not several", "query")
    if not queries or not queries[0].strip():
        return None
    query = queries[0]
    if len(query) > settings.max_query_length:
        raise InputError("query", f"the query is longer than {settings.max_query_length} characters")
    return SparqlRequest(
        query=query,
        accept=accept,
        formats=tuple(v for name in FORMAT_PARAMETERS for v in _values(params, name)),
        default_graphs=tuple(_values(params, "default-graph-uri")),
        named_graphs=tuple(_values(params, "named-graph-uri")),
        timeout=settings.sparql_timeout_seconds,
        max_rows=settings.sparql_max_rows,
        max_bytes=settings.sparql_max_result_bytes,
    )


def pool_config(settings: Settings) -> SparqlPoolConfig:
    return SparqlPoolConfig(
        workers=settings.sparql_workers,
        memory_bytes=settings.sparql_worker_memory_mb * 1024 * 1024,
        queue_size=settings.sparql_queue_size,
        allow_unconfined=settings.sparql_allow_unconfined,
    )


def _description(params: Sequence[tuple[str, str]], accept: str | None, settings: Settings) -> Response:
    """The service description in the syntax the `format` parameters name (the first one that names one of
    its three), else by Accept."""
    offered = "the service description is served as " + ", ".join(SERVICE_DESCRIPTION_TYPES)
    formats = [v for name in FORMAT_PARAMETERS for v in _values(params, name) if v.strip()]
    for value in formats:
        media = format_type(value, "graph")
        if media in SERVICE_DESCRIPTION_TYPES:
            return _description_response(media, settings)
    if formats:
        raise SparqlNotAcceptable(f"{formats[0][:100]!r} is not a format of the service description; {offered}", "format")
    media = best_type(SERVICE_DESCRIPTION_TYPES, accept) if accept else None
    if media == "":
        raise SparqlNotAcceptable(offered)
    return _description_response(media or TURTLE, settings)


def _description_response(media: str, settings: Settings) -> Response:
    return Response(service_description(media, settings.public_base_url), media_type=media, headers={"Vary": "Accept"})


async def _answer(params: Sequence[tuple[str, str]], request: Request, service: KnowledgeService, settings: Settings) -> Response:
    # negotiation reads a bounded prefix of Accept (kg.sparql.cap_accept): a huge header costs nothing here
    accept = cap_accept(",".join(request.headers.getlist("accept")) or None)
    if _values(params, "update"):
        return JSON(UPDATE_REFUSED, status_code=403)
    sparql = _protocol_request(params, accept, settings)
    if sparql is None:
        return _description(params, accept, settings)
    result = await service.sparql_pool(pool_config(settings)).run_async(sparql)
    headers = {"Vary": "Accept"}
    if result.truncated:
        headers["X-SPARQL-MaxRows"] = str(settings.sparql_max_rows)
        headers["Warning"] = f'199 - "result cut to {settings.sparql_max_rows} rows; add LIMIT/OFFSET"'
    return Response(result.body, media_type=result.media_type, headers=headers)


async def answer_request(request: Request) -> Response:
    """GET or POST /sparql, from the request alone."""
    service: KnowledgeService = request.app.state.service
    settings: Settings = request.app.state.settings
    params = query_params(request.scope["query_string"])
    if request.method != "POST":
        return await _answer(params, request, service, settings)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/sparql-update":
        return JSON(UPDATE_REFUSED, status_code=403)
    if content_type not in ("application/sparql-query", "application/x-www-form-urlencoded", ""):
        return JSON(
            {"detail": "send application/sparql-query or a form with a query field", "field": "Content-Type"},
            status_code=415,
        )
    limit = settings.max_query_length * 4
    body = bytearray()
    try:
        async for chunk in request.stream():  # stop reading at the limit rather than buffer any body
            body += chunk
            if len(body) > limit:
                raise InputError("query", "the request body is too large")
    except ClientDisconnect:
        # The client went away mid-body: nobody will read an answer, and it is no server error to log.
        return Response(status_code=400)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("query", "the body is not UTF-8") from None
    if content_type == "application/sparql-query":
        if not text.strip():
            raise InputError("query", "the body holds no query")
        params = [(k, v) for k, v in params if k != "query"] + [("query", text)]
    else:
        try:
            form = parse_qsl(text, keep_blank_values=True, max_num_fields=1000)
        except ValueError:
            raise InputError("query", "the form has too many fields") from None
        if not any(v.strip() for v in _values(form, "query")) and not _values(form, "update") and not _values(params, "update"):
            raise InputError("query", "the form has no 'query' field")
        params = [(k, v) for k, v in params if k != "query"] + form
    return await _answer(params, request, service, settings)


@router.get(
    "/sparql",
    responses=SPARQL_RESPONSES,
    summary="SPARQL query via GET (?query=); without a query, the service description",
)
async def sparql_get(
    request: Request,
    # Declared for the documentation only (see LeanRoute): answer_request reads them from the query string.
    query: Annotated[
        str | None,
        Query(
            description="a SPARQL 1.1 query",
            examples=[
                "SELECT ?addon WHERE { ?addon <https://w3id.org/spinekg/vocab/addOnFor> "
                "<https://w3id.org/spinekg/code/cpt/22510> }"
            ],
        ),
    ] = None,
    default_graph_uri: Annotated[
        list[str] | None, Query(alias="default-graph-uri", description="graphs whose merge is the default graph")
    ] = None,
    named_graph_uri: Annotated[list[str] | None, Query(alias="named-graph-uri", description="graphs GRAPH can name")] = None,
    format: Annotated[
        str | None,
        Query(description="override Accept: json, xml, csv, tsv, turtle, n3, nt, json-ld, rdf, or a media type; also as output="),
    ] = None,
) -> Response:
    return await answer_request(request)


@router.post(
    "/sparql",
    responses=SPARQL_RESPONSES,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/sparql-query": {"schema": {"type": "string"}},
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "query": {"type": "string"},
                            "default-graph-uri": {"type": "array", "items": {"type": "string"}},
                            "named-graph-uri": {"type": "array", "items": {"type": "string"}},
                            "format": {"type": "string"},
                        },
                    }
                },
            }
        }
    },
    summary="SPARQL query via POST: a form field 'query' or an application/sparql-query body",
)
async def sparql_post(request: Request) -> Response:
    return await answer_request(request)
