"""create_app(): the FastAPI application. The graph is loaded once per process, in the lifespan."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from spinekg.api import errors
from spinekg.api.routes import claims, codes, meta, queries, sparql
from spinekg.api.settings import Settings, get_settings
from spinekg.kg import __version__
from spinekg.kg.graph import KnowledgeGraph, load_graph
from spinekg.kg.service import KnowledgeService

DESCRIPTION = """Coding answers for percutaneous vertebroplasty (22510-22512), vertebral augmentation (22513-22515),
sacroplasty (0200T/0201T) and the services they bundle, from a sourced OWL knowledge graph reasoned by HermiT.
Every fact carries its sources; claim verdicts give the rule, the lines, the reason, the fix and the sources.
CPT is a registered trademark of the American Medical Association; labels here are spinekg's own paraphrases."""


def create_app(settings: Settings | None = None, graph: KnowledgeGraph | None = None) -> FastAPI:
    """Build the app. Tests pass a graph; ``spinekg serve`` loads (or builds) it from build/."""
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

    app = FastAPI(title="spinekg", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    errors.install(app)
    for module in (codes, claims, queries, sparql, meta):
        app.include_router(module.router)
    return app
