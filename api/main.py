"""create_app(): the FastAPI application. The graph is loaded once per process, in the lifespan.

Around the routes (api/middleware.py), outermost first: HEAD answered as GET without a body; plain-text
refusals rewritten as the JSON error body; Host checked against SPINEKG_ALLOWED_HOSTS; CORS by
SPINEKG_CORS_ORIGINS, and by SPINEKG_CORS_CLAIMS_ORIGINS for /claims/*. /docs and /redoc load Swagger UI
and ReDoc from files shipped in the fastapi-offline package, never from a CDN. Proxy headers
(X-Forwarded-For) are uvicorn's business: api/cli.py trusts them only from SPINEKG_FORWARDED_ALLOW_IPS."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.middleware.trustedhost import TrustedHostMiddleware

from spinekg.api import errors, openapi
from spinekg.api.middleware import HeadAsGet, PlainErrorsAsJSON, SplitCORS
from spinekg.api.routes import claims, codes, coding, diagnoses, meta, queries, sparql
from spinekg.api.settings import Settings, get_settings
from spinekg.kg import __version__
from spinekg.kg.graph import KnowledgeGraph, load_graph
from spinekg.kg.service import KnowledgeService

DESCRIPTION = """Coding answers for percutaneous vertebroplasty (22510-22512), vertebral augmentation (22513-22515),
sacroplasty (0200T/0201T) and the services they bundle, from a sourced OWL knowledge graph reasoned by HermiT.
Every fact carries its sources; claim verdicts give the rule, the lines, the reason, the fix and the sources.
CPT is a registered trademark of the American Medical Association; labels here are spinekg's own paraphrases."""


def create_app(settings: Settings | None = None, graph: KnowledgeGraph | None = None) -> FastAPI:
    """Build the app. Tests pass a graph; ``spinekg serve`` loads (or builds) it from the build cache."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = KnowledgeService(graph or load_graph(), sparql_workers=settings.sparql_workers)
        app.state.service = service
        app.state.settings = settings
        # The graph, rules and caches built above live as long as the process: keep the garbage
        # collector from scanning them on every full collection (tail latency under load).
        gc.freeze()
        try:
            yield
        finally:
            service.close()

    app = FastAPIOffline(
        title="spinekg",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # no Swagger UI validator badge: it would send the document's URL to validator.swagger.io
        swagger_ui_parameters={"validatorUrl": None},
        # /codes/ is a 404, not a redirect: Starlette builds the redirect's Location from the Host header
        redirect_slashes=False,
    )
    errors.install(app)
    # /sparql first: FastAPI tries the routes in order, and SPARQL is the route a store's clients hammer
    # (bench/sparql_bench.py); no two routers share a path, so the order changes nothing else
    for module in (sparql, codes, diagnoses, claims, coding, queries, meta):
        app.include_router(module.router)
    openapi.install(app)
    # add_middleware wraps what is there already: the last added is the outermost
    app.add_middleware(SplitCORS, origins=settings.cors_origins, claims_origins=settings.cors_claims_origins)
    if "*" not in settings.allowed_hosts:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts, www_redirect=False)
    app.add_middleware(PlainErrorsAsJSON)
    app.add_middleware(HeadAsGet)
    return app
