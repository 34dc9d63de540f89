"""The merged ontology for Protégé, and the health check."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from spinekg.api.deps import ServiceDep
from spinekg.api.responses import JSON
from spinekg.api.schemas import Health
from spinekg.kg.sparql import negotiate

router = APIRouter(tags=["meta"])
ONTOLOGY_TYPES = {"text/turtle": "ttl", "application/rdf+xml": "owl"}


@router.get(
    "/ontology",
    summary="The merged ontology (asserted + inferred), Turtle or RDF/XML by Accept",
    responses={200: {"content": {"text/turtle": {}, "application/rdf+xml": {}}}, 406: {}},
)
def ontology(
    request: Request,
    service: ServiceDep,
    format: Annotated[str | None, Query(pattern="^(ttl|owl)$", description="ttl or owl, overriding Accept")] = None,
) -> Response:
    if format:
        media = "text/turtle" if format == "ttl" else "application/rdf+xml"
    else:
        media = negotiate(request.headers.get("accept"), "graph")
        if media not in ONTOLOGY_TYPES:
            return JSON(
                {"detail": "the ontology is served as text/turtle or application/rdf+xml", "field": "Accept"},
                status_code=406,
            )
    return Response(
        service.ontology(ONTOLOGY_TYPES[media]),
        media_type=media,
        headers={"Content-Disposition": f'inline; filename="spinekg.{ONTOLOGY_TYPES[media]}"'},
    )


@router.get("/healthz", response_model=Health, summary="Liveness and what is loaded")
async def healthz(service: ServiceDep) -> JSON:
    return JSON(service.health())
