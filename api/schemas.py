"""Request and response models of the JSON API (field names appear in 422 messages)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

# Documentation examples live in a data file, beside the code that shows them.
EXAMPLES = json.loads((Path(__file__).parent / "examples.json").read_text(encoding="utf-8"))
CLAIM_EXAMPLE = EXAMPLES["claim"]


class ClaimLine(BaseModel):
    model_config = ConfigDict(extra="ignore")
    code: str = Field(pattern=r"^[0-9A-Za-z]{5}$", description="CPT/HCPCS code", examples=[EXAMPLES["code"]])
    modifiers: list[str] = Field(default_factory=list, max_length=4, description="up to four modifiers", examples=[["XS"]])
    units: StrictInt = Field(1, ge=1, le=999, description="units of service (one per vertebral body for 22510-22515)")
    levels: list[str] = Field(
        default_factory=list,
        max_length=31,
        description="treated vertebrae: C1-C7, T1-T12, L1-L6, S1-S5, Co",
        examples=[["L3"]],
    )


class Claim(BaseModel):
    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [CLAIM_EXAMPLE]})
    id: str | StrictInt | None = Field(None, description="echoed in the verdict")
    date_of_service: str | None = Field(None, pattern=r"^\d{4}-\d{2}-\d{2}$", description="YYYY-MM-DD; default today")
    place_of_service: str | None = Field(None, pattern=r"^\d{2}$", description="CMS place-of-service code")
    lines: list[ClaimLine] = Field(min_length=1)


class BatchRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"claims": [CLAIM_EXAMPLE]}]})
    claims: list[dict[str, Any]] = Field(
        min_length=1,
        description="claims in the single-claim format; each is checked on its own, and an unusable one gets an error object",
    )


class Source(BaseModel):
    id: str
    title: str
    url: str | None = None
    year: int | None = None
    tier: str = Field(description="T1 CMS/contractor, T2 AMA as quoted, T3 blogs and vendors, T4 unreliable")


class Finding(BaseModel):
    rule: str = Field(description="the rule id: a file stem in queries/rules/")
    severity: str = Field(description="error (makes the claim invalid), warning or info")
    lines: list[int]
    message: str
    fix: str
    evidence: str = Field(description="verified, derived, secondary or unverified")
    sources: list[Source]


class SuggestedLine(BaseModel):
    code: str
    modifiers: list[str]
    units: int
    levels: list[str]


class Suggestion(BaseModel):
    lines: list[SuggestedLine]
    changes: list[str]


class Verdict(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["verdict"]]})
    id: str | int | None = None
    valid: bool
    date_of_service: str
    findings: list[Finding]
    suggestion: Suggestion | None


class BatchItemError(BaseModel):
    index: int
    error: dict[str, str]


class BatchResponse(BaseModel):
    results: list[Verdict | BatchItemError]
    valid: int
    invalid: int
    unusable: int


class CodeSummary(BaseModel):
    code: str
    label: str = Field(description="our paraphrase, not the AMA descriptor")
    family: str
    kind: str
    status: str


class CodeDetail(BaseModel):
    model_config = ConfigDict(extra="allow")
    code: str
    label: str
    definition: str | None
    kinds: list[str]
    family: dict[str, Any]
    procedure: str | None
    regions: list[str]
    status: str
    valid_from: str | None
    deleted_on: str | None
    replaced_by: list[str]
    fee_schedule: list[dict[str, Any]] = Field(description="RVUs, national amounts and indicators with their meaning, by year")
    modifiers: dict[str, Any]
    documentation: list[dict[str, Any]]
    denial_reasons: list[dict[str, Any]]
    sources: list[dict[str, Any]]


class Pair(BaseModel):
    code: str
    label: str
    role: str = Field(description="primary (for an add-on) or add-on (for a primary)")
    family: str
    reason: str
    inferred: bool
    sources: list[str]


class PairsResponse(BaseModel):
    code: str
    pairs: list[Pair]


class Bundle(BaseModel):
    direction: str = Field(description="includes or included in")
    code: str
    label: str
    scope: str = Field(description="same session, or same level only")
    bypass_modifiers: list[str]
    evidence: str
    ncci_pair: str = Field(description="whether CMS's NCCI table is known to hold the pair")
    reason: str
    edit: str
    sources: list[str]


class BundlesResponse(BaseModel):
    code: str
    bundles: list[Bundle]


class Conflict(BaseModel):
    code: str
    label: str
    conflict: str
    scope: str
    evidence: str
    reason: str


class ConflictsResponse(BaseModel):
    code: str
    conflicts: list[Conflict]


class Vertebra(BaseModel):
    level: str
    label: str
    region: str
    sequence: int
    transitional: bool


class VertebraDetail(Vertebra):
    billing_regions: list[str]
    above: list[str]
    below: list[str]
    codes: dict[str, list[dict[str, Any]]] = Field(description="procedure -> codes that apply at this level")


class QueryParam(BaseModel):
    name: str
    type: str
    description: str
    example: str | None
    required: bool


class QueryInfo(BaseModel):
    name: str
    kind: str
    summary: str
    description: str
    params: list[QueryParam]
    source: Any = None


class QueryResult(BaseModel):
    query: str
    columns: list[str]
    rows: list[dict[str, Any]]


class QueryParams(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["query_params"]]})
    params: dict[str, str] = Field(default_factory=dict)


class Health(BaseModel):
    status: str
    build: str | None
    triples: dict[str, int | None]
    rules: int
    codes: int


class ErrorBody(BaseModel):
    detail: str
    field: str | None = None
