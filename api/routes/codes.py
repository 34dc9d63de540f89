"""Codes and vertebrae: what the graph knows, with reasons and sources."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from spinekg.api.deps import ServiceDep
from spinekg.api.responses import JSON
from spinekg.api.schemas import (
    EXAMPLES,
    BundlesResponse,
    CodeCoverage,
    CodeDetail,
    CodeSummary,
    ConflictsResponse,
    ErrorBody,
    NcciEdits,
    NcciMue,
    NcciPrimaries,
    PairsResponse,
    Vertebra,
    VertebraDetail,
)
from spinekg.kg.facts.codes import CODE_FORMAT

router = APIRouter(tags=["codes and anatomy"])
CodePath = Annotated[str, Path(pattern=f"^{CODE_FORMAT}$", description="a CPT/HCPCS code", examples=[EXAMPLES["code"]])]


def _filter(values: str, example: str) -> Any:
    """A GET /codes filter: any short text here; kg checks it against the values the graph holds (422
    naming the filter and listing them), so a value added to the ontology needs no change here."""
    return Query(
        max_length=64, description=f"one of the values {values}; another value is a 422 listing them", examples=[example]
    )


NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "unknown code, with the closest known codes"}
}


@router.get("/codes", response_model=list[CodeSummary], summary="List codes, optionally filtered")
async def list_codes(
    service: ServiceDep,
    family: Annotated[str | None, _filter("GET /codes gives in family", "vertebroplasty")] = None,
    kind: Annotated[str | None, _filter("GET /codes gives in kind", "add-on")] = None,
    region: Annotated[str | None, _filter("of region in GET /queries/regions (a spinal region)", "lumbar")] = None,
    status: Annotated[str | None, _filter("GET /codes gives in status", "active")] = None,
) -> JSON:
    return JSON(service.codes(family, kind, region, status))


@router.get(
    "/codes/{code}",
    response_model=CodeDetail,
    responses=NOT_FOUND,
    summary="Everything about one code: kind, family, regions, dates, RVUs and amounts, indicators, modifiers, "
    "documentation, denial reasons, sources",
)
async def get_code(code: CodePath, service: ServiceDep) -> JSON:
    return JSON(service.code(code))


@router.get(
    "/codes/{code}/pairs",
    response_model=PairsResponse,
    responses=NOT_FOUND,
    summary="What pairs with a code: an add-on's primaries, or a primary's add-ons",
)
async def get_pairs(code: CodePath, service: ServiceDep) -> JSON:
    return JSON(service.pairs(code))


@router.get(
    "/codes/{code}/bundles",
    response_model=BundlesResponse,
    responses=NOT_FOUND,
    summary="What a code includes or is included in, with same-level conditions and bypass modifiers",
)
async def get_bundles(code: CodePath, service: ServiceDep) -> JSON:
    return JSON(service.bundles(code))


@router.get(
    "/codes/{code}/conflicts",
    response_model=ConflictsResponse,
    responses=NOT_FOUND,
    summary="Codes that must not be billed with this one in the same session (or at the same level)",
)
async def get_conflicts(code: CodePath, service: ServiceDep) -> JSON:
    return JSON(service.conflicts(code))


NO_TABLE: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "the NCCI table asked for is not imported (spinekg import ncci)"},
    422: {"model": ErrorBody, "description": "a malformed code, date, setting or service type"},
}
OnQuery = Annotated[str | None, Query(max_length=10, description="the date of service (YYYY-MM-DD); today when left out")]


@router.get(
    "/codes/{code}/edits",
    response_model=NcciEdits,
    responses=NO_TABLE,
    summary="CMS's NCCI PTP edits of any code in Column 1 (or between it and another code) in force on a date",
)
async def get_edits(
    code: CodePath,
    service: ServiceDep,
    on: OnQuery = None,
    setting: Annotated[str, Query(max_length=16, description="practitioner or outpatient (hospital)")] = "practitioner",
    other: Annotated[
        str | None, Query(alias="with", max_length=8, description="only the edits between the code and this one")
    ] = None,
) -> JSON:
    return JSON(service.ncci_edits(code, on, setting, other))


@router.get(
    "/codes/{code}/mue",
    response_model=NcciMue,
    responses=NO_TABLE,
    summary="CMS's medically unlikely edit (MUE) of any code for a service type, in the release in force on a date",
)
async def get_mue(
    code: CodePath,
    service: ServiceDep,
    on: OnQuery = None,
    service_type: Annotated[str, Query(max_length=16, description="practitioner, outpatient or dme")] = "practitioner",
) -> JSON:
    return JSON(service.ncci_mue(code, on, service_type))


@router.get(
    "/codes/{code}/primaries",
    response_model=NcciPrimaries,
    responses=NO_TABLE,
    summary="CMS's add-on code edits of any code in force on a date: its primaries and edit types",
)
async def get_primaries(code: CodePath, service: ServiceDep, on: OnQuery = None) -> JSON:
    return JSON(service.ncci_primaries(code, on))


@router.get(
    "/codes/{code}/coverage",
    response_model=CodeCoverage,
    responses={
        404: {"model": ErrorBody, "description": "unknown code, with the closest known codes"},
        422: {"model": ErrorBody, "description": "a state Medicare does not serve, or a malformed date"},
    },
    summary="Each Medicare contractor's LCD for a code; for a state (and date), its LCD and the diagnoses that support the code",
)
async def get_coverage(
    code: CodePath,
    service: ServiceDep,
    state: Annotated[str | None, Query(max_length=8, description="USPS code of a state or territory, e.g. OR")] = None,
    on: Annotated[
        str | None, Query(alias="date", max_length=10, description="the date of service (YYYY-MM-DD); without it, every date")
    ] = None,
) -> JSON:
    return JSON(service.coverage(code, state, on))


@router.get("/vertebrae", response_model=list[Vertebra], summary="Every level a claim can name, in order")
async def list_vertebrae(service: ServiceDep) -> JSON:
    return JSON(service.vertebrae())


@router.get(
    "/vertebrae/{level}",
    response_model=VertebraDetail,
    responses={404: {"model": ErrorBody, "description": "not a vertebra"}},
    summary="One level: region, billing regions, neighbours, and the codes for each procedure there",
)
async def get_vertebra(level: Annotated[str, Path(max_length=10, examples=["L6"])], service: ServiceDep) -> JSON:
    return JSON(service.vertebra(level))
