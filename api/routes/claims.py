"""Claim validation (the same contract as `spinekg validate`). Claim bodies are never logged."""

from __future__ import annotations

from fastapi import APIRouter

from spinekg.api.deps import ServiceDep, SettingsDep
from spinekg.api.responses import JSON
from spinekg.api.schemas import BatchRequest, BatchResponse, Claim, ErrorBody, Verdict
from spinekg.kg.errors import InputError

router = APIRouter(prefix="/claims", tags=["claims"])


@router.post(
    "/validate",
    response_model=Verdict,
    responses={422: {"model": ErrorBody}},
    summary="Check one claim: valid?, findings with rule, lines, message, fix and sources, and a suggestion",
)
async def validate(claim: Claim, service: ServiceDep) -> JSON:
    return JSON(service.validate(claim.model_dump(exclude_none=True)))


@router.post(
    "/validate/batch",
    response_model=BatchResponse,
    responses={422: {"model": ErrorBody}},
    summary="Check up to SPINEKG_BATCH_MAX_CLAIMS claims; an unusable claim gets an error object",
)
async def validate_batch(batch: BatchRequest, service: ServiceDep, settings: SettingsDep) -> JSON:
    if len(batch.claims) > settings.batch_max_claims:
        raise InputError(
            "claims",
            f"{len(batch.claims)} claims; at most {settings.batch_max_claims} per request "
            "(use spinekg validate --batch for large files)",
        )
    results = service.validate_many(batch.claims)
    errors = sum(1 for r in results if "error" in r)
    valid = sum(1 for r in results if r.get("valid") is True)
    return JSON({"results": results, "valid": valid, "invalid": len(results) - valid - errors, "unusable": errors})
