"""Diagnoses: the ICD-10-CM code set the build loaded (kg/icd10), one code's page at a time."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from spinekg.api.deps import ServiceDep
from spinekg.api.responses import JSON
from spinekg.api.schemas import DiagnosisDetail, ErrorBody

router = APIRouter(tags=["diagnoses"])

RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {
        "model": ErrorBody,
        "description": "a code the release does not hold (with the closest codes), or no loaded release in force on the date",
    },
    422: {"model": ErrorBody, "description": "a string not shaped like an ICD-10-CM code, or a malformed date"},
}


@router.get(
    "/diagnoses/{code}",
    response_model=DiagnosisDetail,
    responses=RESPONSES,
    summary="One ICD-10-CM code: title, billable, ancestors, children, releases, and where it is listed",
)
async def get_diagnosis(
    code: Annotated[str, Path(max_length=16, description="an ICD-10-CM code, with or without the dot", examples=["M80.08XA"])],
    service: ServiceDep,
    on: Annotated[
        str | None,
        Query(max_length=10, description="a date of service (YYYY-MM-DD): the release in force then; default the latest"),
    ] = None,
) -> JSON:
    return JSON(service.diagnosis(code, on))
