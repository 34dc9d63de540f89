"""Error responses: a stable JSON shape {"detail": ..., "field": ...}; never a stack trace or an
internal message, and never the request body (claims are health data)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from spinekg.api.responses import JSON
from spinekg.kg.errors import InputError, SpinekgError
from spinekg.kg.facts.codes import UnknownCodeError
from spinekg.kg.facts.diagnoses import ReleaseNotLoaded
from spinekg.kg.facts.levels import UnknownVertebraError
from spinekg.kg.facts.ncci import NoNcciTables
from spinekg.kg.queries import UnknownQueryError
from spinekg.kg.sparql import (
    SparqlBusy,
    SparqlError,
    SparqlNotAcceptable,
    SparqlOutOfMemory,
    SparqlProtocolError,
    SparqlRefused,
    SparqlSyntaxError,
    SparqlTimeout,
    SparqlTooLarge,
    SparqlUnavailable,
)

log = logging.getLogger("spinekg.api")
MAX_ERRORS = 20  # problems listed in one 422 answer
# SPARQL failures: what the client sent (4xx) or an overloaded / stopped worker (503), never a 500
SPARQL_STATUS: dict[type[SparqlError], int] = {
    SparqlSyntaxError: 400,
    SparqlProtocolError: 400,
    SparqlRefused: 403,
    SparqlNotAcceptable: 406,
    SparqlTooLarge: 413,
    SparqlTimeout: 503,
    SparqlOutOfMemory: 503,
    SparqlBusy: 503,
    SparqlUnavailable: 503,
}


def _field(loc: tuple[object, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path")]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSON:
        found = exc.errors()
        errors = [{"field": _field(tuple(e.get("loc", ()))), "message": str(e.get("msg", "invalid"))} for e in found[:MAX_ERRORS]]
        first = errors[0] if errors else {"field": "body", "message": "invalid request"}
        detail = f"{first['field']}: {first['message']}"
        if len(found) > MAX_ERRORS:  # an answer bounded whatever the body holds
            detail += f" (and {len(found) - 1} more problems; the first {MAX_ERRORS} are listed)"
        return JSON({"detail": detail, "field": first["field"], "errors": errors}, status_code=422)

    @app.exception_handler(UnknownCodeError)
    async def unknown_code(_: Request, exc: UnknownCodeError) -> JSON:
        return JSON({"detail": exc.detail, "field": "code", "closest": exc.closest}, status_code=404)

    @app.exception_handler(UnknownQueryError)
    async def unknown_query(_: Request, exc: UnknownQueryError) -> JSON:
        return JSON({"detail": exc.detail, "field": "name"}, status_code=404)

    @app.exception_handler(UnknownVertebraError)
    async def unknown_vertebra(_: Request, exc: UnknownVertebraError) -> JSON:
        return JSON({"detail": exc.detail, "field": "level"}, status_code=404)

    @app.exception_handler(ReleaseNotLoaded)
    async def release_not_loaded(_: Request, exc: ReleaseNotLoaded) -> JSON:
        return JSON({"detail": exc.detail, "field": exc.field}, status_code=404)

    @app.exception_handler(NoNcciTables)
    async def no_ncci_tables(_: Request, exc: NoNcciTables) -> JSON:
        return JSON({"detail": exc.detail, "field": exc.field}, status_code=404)

    @app.exception_handler(InputError)
    async def bad_input(_: Request, exc: InputError) -> JSON:
        return JSON({"detail": str(exc), "field": exc.field}, status_code=422)

    @app.exception_handler(SparqlError)
    async def sparql_error(_: Request, exc: SparqlError) -> JSON:
        status = SPARQL_STATUS.get(type(exc), 400)
        headers = {"Retry-After": "1"} if isinstance(exc, SparqlBusy) else None
        return JSON({"detail": str(exc), "field": exc.field}, status_code=status, headers=headers)

    @app.exception_handler(SpinekgError)
    async def service_error(_: Request, exc: SpinekgError) -> JSON:
        log.error("service error: %s", type(exc).__name__)
        return JSON({"detail": "the service could not answer; see the server log"}, status_code=500)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSON:
        # Starlette's own: no route for the path (404) or not for the method (405, with Allow)
        field = {404: "path", 405: "method", 415: "Content-Type"}.get(exc.status_code)
        headers = dict(getattr(exc, "headers", None) or {})
        allow = [m.strip() for m in headers.get("Allow", "").split(",") if m.strip()]
        if "GET" in allow and "HEAD" not in allow:  # api/middleware.py answers HEAD wherever GET is
            headers["Allow"] = ", ".join([*allow, "HEAD"])
        return JSON({"detail": exc.detail, "field": field}, status_code=exc.status_code, headers=headers or None)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSON:
        log.error("unexpected error: %s", type(exc).__name__)
        return JSON({"detail": "internal error"}, status_code=500)
