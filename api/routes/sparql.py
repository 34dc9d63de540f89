"""SPARQL 1.1 Protocol endpoint, read-only (rdflib-endpoint's posture with enable_update=False):
queries by GET ?query=, POST form or POST application/sparql-query; results by content negotiation;
a service description when no query is given."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from spinekg.api.deps import ServiceDep, SettingsDep
from spinekg.api.settings import Settings
from spinekg.kg.errors import InputError
from spinekg.kg.service import KnowledgeService
from spinekg.kg.sparql import SHORT_NAMES

router = APIRouter(tags=["SPARQL"])

SPARQL_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "results",
        "content": {
            "application/sparql-results+json": {},
            "application/sparql-results+xml": {},
            "text/csv": {},
            "text/tab-separated-values": {},
            "text/turtle": {},
            "application/n-triples": {},
            "application/ld+json": {},
            "application/rdf+xml": {},
        },
    },
    400: {"description": "the query does not parse"},
    403: {"description": "updates, LOAD and SERVICE are refused"},
    406: {"description": "no acceptable result format"},
    503: {"description": "the query ran past the time limit and was stopped"},
}


def service_description(base: str) -> str:
    endpoint = base.rstrip("/") + "/sparql"
    formats = [
        "SPARQL_Results_JSON",
        "SPARQL_Results_XML",
        "SPARQL_Results_CSV",
        "SPARQL_Results_TSV",
        "Turtle",
        "N-Triples",
        "JSON-LD",
        "RDF_XML",
    ]
    lines = [
        "@prefix sd: <http://www.w3.org/ns/sparql-service-description#> .",
        "@prefix fmt: <http://www.w3.org/ns/formats/> .",
        "@prefix dcterms: <http://purl.org/dc/terms/> .",
        "",
        f"<{endpoint}> a sd:Service ;",
        f"    sd:endpoint <{endpoint}> ;",
        "    sd:supportedLanguage sd:SPARQL11Query ;",
        "    sd:feature sd:UnionDefaultGraph ;",
        "    " + " ; ".join(f"sd:resultFormat fmt:{f}" for f in formats) + " ;",
        '    dcterms:description "Read-only SPARQL over the spinekg reasoned graph (asserted + inferred triples as the '
        'default graph). Updates, LOAD and SERVICE are refused; each query runs under a time and a result-size limit." ;',
        "    sd:defaultDataset [ a sd:Dataset ; sd:defaultGraph [ a sd:Graph ] ;",
        "        sd:namedGraph [ sd:name <https://w3id.org/spinekg/graph/asserted> ] ,",
        "                      [ sd:name <https://w3id.org/spinekg/graph/inferred> ] ] .",
    ]
    return "\n".join(lines) + "\n"


async def _answer(
    query: str | None,
    accept: str | None,
    fmt: str | None,
    request: Request,
    service: KnowledgeService,
    settings: Settings,
) -> Response:
    if query is None or not query.strip():
        return Response(service_description(str(request.base_url)), media_type="text/turtle")
    if len(query) > settings.max_query_length:
        raise InputError("query", f"the query is longer than {settings.max_query_length} characters")
    if fmt:
        if fmt.lower() not in SHORT_NAMES:
            raise InputError("format", f"{fmt!r} is not a result format; use one of {', '.join(sorted(SHORT_NAMES))}")
        accept = SHORT_NAMES[fmt.lower()]
    result = await run_in_threadpool(service.sparql, query, accept, settings.sparql_timeout_seconds, settings.sparql_max_rows)
    headers = {"Vary": "Accept"}
    if result.truncated:
        headers["X-SPARQL-MaxRows"] = str(settings.sparql_max_rows)
        headers["Warning"] = f'199 - "result cut to {settings.sparql_max_rows} rows; add LIMIT/OFFSET"'
    return Response(result.body, media_type=result.media_type, headers=headers)


@router.get(
    "/sparql",
    responses=SPARQL_RESPONSES,
    summary="SPARQL query via GET (?query=); without a query, the service description",
)
async def sparql_get(
    request: Request,
    service: ServiceDep,
    settings: SettingsDep,
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
    format: Annotated[str | None, Query(description="override Accept: json, xml, csv, tsv, turtle, nt, jsonld, rdfxml")] = None,
) -> Response:
    return await _answer(query, request.headers.get("accept"), format, request, service, settings)


@router.post(
    "/sparql",
    responses=SPARQL_RESPONSES,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/sparql-query": {"schema": {"type": "string"}},
                "application/x-www-form-urlencoded": {"schema": {"type": "object", "properties": {"query": {"type": "string"}}}},
            }
        }
    },
    summary="SPARQL query via POST: a form field 'query' or an application/sparql-query body",
)
async def sparql_post(request: Request, service: ServiceDep, settings: SettingsDep) -> Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if len(body) > settings.max_query_length * 4:
        raise InputError("query", "the request body is too large")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("query", "the body is not UTF-8") from None
    fmt = request.query_params.get("format")
    if content_type == "application/sparql-query":
        query: str | None = text
    elif content_type in ("application/x-www-form-urlencoded", ""):
        form = parse_qs(text)
        if "update" in form:
            return Response(
                '{"detail":"updates are refused: the SPARQL endpoint is read-only","field":"update"}',
                status_code=403,
                media_type="application/json",
            )
        query = form["query"][0] if form.get("query") else None
        fmt = fmt or (form["format"][0] if form.get("format") else None)
        if query is None:
            raise InputError("query", "the form has no 'query' field")
    elif content_type == "application/sparql-update":
        return Response(
            '{"detail":"updates are refused: the SPARQL endpoint is read-only","field":"update"}',
            status_code=403,
            media_type="application/json",
        )
    else:
        return Response(
            '{"detail":"send application/sparql-query or a form with a query field","field":"Content-Type"}',
            status_code=415,
            media_type="application/json",
        )
    return await _answer(query, request.headers.get("accept"), fmt, request, service, settings)
