"""Error responses: a stable JSON shape {"detail": ..., "field": ...}; never a stack trace or an
internal message, and never the request body (claims are health data)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from spinekg.api.responses import JSON
from spinekg.kg.codeinfo import UnknownCodeError
from spinekg.kg.errors import InputError, SpinekgError
from spinekg.kg.queries import UnknownQueryError
from spinekg.kg.service import UnknownVertebraError
from spinekg.kg.sparql import SparqlBusy, SparqlRefused, SparqlSyntaxError, SparqlTimeout

log = logging.getLogger("spinekg.api")


def _field(loc: tuple[object, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path")]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSON:
        errors = [{"field": _field(tuple(e.get("loc", ()))), "message": str(e.get("msg", "invalid"))} for e in exc.errors()]
        first = errors[0] if errors else {"field": "body", "message": "invalid request"}
        return JSON(
            {"detail": f"{first['field']}: {first['message']}", "field": first["field"], "errors": errors},
            status_code=422,
        )

    @app.exception_handler(UnknownCodeError)
    async def unknown_code(_: Request, exc: UnknownCodeError) -> JSON:
        return JSON({"detail": exc.detail, "field": "code", "closest": exc.closest}, status_code=404)

    @app.exception_handler(UnknownQueryError)
    async def unknown_query(_: Request, exc: UnknownQueryError) -> JSON:
        return JSON({"detail": exc.detail, "field": "name"}, status_code=404)

    @app.exception_handler(UnknownVertebraError)
    async def unknown_vertebra(_: Request, exc: UnknownVertebraError) -> JSON:
        return JSON({"detail": exc.detail, "field": "level"}, status_code=404)

    @app.exception_handler(InputError)
    async def bad_input(_: Request, exc: InputError) -> JSON:
        return JSON({"detail": str(exc), "field": exc.field}, status_code=422)

    @app.exception_handler(SparqlRefused)
    async def refused(_: Request, exc: SparqlRefused) -> JSON:
        status = 406 if str(exc) == "not acceptable" else 403
        detail = (
            (
                "no acceptable result format; use application/sparql-results+json, application/sparql-results+xml, "
                "text/csv or text/tab-separated-values for SELECT and ASK, and text/turtle, application/n-triples, "
                "application/ld+json or application/rdf+xml for CONSTRUCT and DESCRIBE"
            )
            if status == 406
            else str(exc)
        )
        return JSON({"detail": detail, "field": "query" if status == 403 else "Accept"}, status_code=status)

    @app.exception_handler(SparqlSyntaxError)
    async def syntax(_: Request, exc: SparqlSyntaxError) -> JSON:
        return JSON({"detail": str(exc), "field": "query"}, status_code=400)

    @app.exception_handler(SparqlTimeout)
    async def timeout(_: Request, exc: SparqlTimeout) -> JSON:
        return JSON({"detail": str(exc), "field": "query"}, status_code=503)

    @app.exception_handler(SparqlBusy)
    async def busy(_: Request, exc: SparqlBusy) -> JSON:
        return JSON({"detail": str(exc)}, status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(SpinekgError)
    async def service_error(_: Request, exc: SpinekgError) -> JSON:
        log.error("service error: %s", type(exc).__name__)
        return JSON({"detail": "the service could not answer; see the server log"}, status_code=500)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSON:
        return JSON({"detail": exc.detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSON:
        log.error("unexpected error: %s", type(exc).__name__)
        return JSON({"detail": "internal error"}, status_code=500)
