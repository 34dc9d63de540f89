"""Request and response models of the JSON API (field names appear in 422 messages)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, StrictInt, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError

from spinekg.kg.claims.limits import MAX_CLAIM_LINES, MAX_ID_LENGTH, MAX_LEVELS_CEILING, MAX_LINES_CEILING
from spinekg.kg.claims.parse import parse_id
from spinekg.kg.errors import InputError
from spinekg.kg.facts.codes import CODE_FORMAT

# Documentation examples live in a data file, beside the code that shows them.
EXAMPLES = json.loads((Path(__file__).parent / "examples.json").read_text(encoding="utf-8"))
CLAIM_EXAMPLE = EXAMPLES["claim"]


def _claim_id(value: Any) -> str | int | None:
    """The kg parser's rule for ids (kg/claims/parse.py), so that the API and the CLI accept the same."""
    try:
        return parse_id(value)
    except InputError as exc:
        raise PydanticCustomError("claim_id", exc.detail) from None


# Whatever a verdict echoes must be writable as JSON: text without unpaired surrogates or control
# characters, of bounded length, or a whole number within signed 64 bits.
ClaimId = Annotated[
    str | int | None,
    PlainValidator(_claim_id),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "maxLength": MAX_ID_LENGTH},
                {"type": "integer", "format": "int64"},
                {"type": "null"},
            ],
            "description": f"echoed in the verdict: text of at most {MAX_ID_LENGTH} characters (no control characters), "
            "or a whole number within signed 64 bits",
        }
    ),
]
Modifier = Annotated[str, StringConstraints(max_length=8)]
Level = Annotated[str, StringConstraints(max_length=16)]


class ClaimLine(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(pattern=f"^{CODE_FORMAT}$", description="CPT/HCPCS code", examples=[EXAMPLES["code"]])
    modifiers: list[Modifier] = Field(default_factory=list, max_length=4, description="up to four modifiers", examples=[["XS"]])
    units: StrictInt = Field(1, ge=1, le=999, description="units of service (one per vertebral body for 22510-22515)")
    levels: list[Level] = Field(
        default_factory=list,
        max_length=MAX_LEVELS_CEILING,  # refused unread beyond it; kg allows one per vertebra the graph knows
        description="treated vertebrae by name, as GET /vertebrae lists them (e.g. T7, L6, Co); at most one per vertebra",
        examples=[["L3"]],
    )


class Claim(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [CLAIM_EXAMPLE]})
    id: ClaimId = None
    date_of_service: str | None = Field(None, pattern=r"^\d{4}-\d{2}-\d{2}$", description="YYYY-MM-DD; default today")
    place_of_service: str | None = Field(None, pattern=r"^\d{2}$", description="CMS place-of-service code")
    claim_type: str | None = Field(
        None,
        max_length=32,
        description="professional (837P, CMS-1500; the default) or outpatient (837I, UB-04): which NCCI tables apply",
    )
    lines: list[ClaimLine] = Field(
        min_length=1,
        max_length=MAX_LINES_CEILING,  # refused before its items are read; the setting's own limit is checked by kg
        description=f"at most SPINEKG_MAX_CLAIM_LINES lines (default {MAX_CLAIM_LINES}, as in the 837P); more: 422",
    )


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


class RuleInfo(BaseModel):
    id: str = Field(description="the rule id: a file stem in queries/rules/ (or the site's SPINEKG_RULES_DIR)")
    kind: str = Field(description="the rule kind that applies its table (GET /claims/rule-kinds)")
    severity: str
    summary: str
    description: str
    message: str | dict[str, str] = Field(description="the message template, or one per case the kind distinguishes")
    fix: str | dict[str, str]
    repair: str | None = Field(description="the correction the rule proposes for the suggested claim, if any")
    options: dict[str, str]
    supersedes: list[str] = Field(description="rules whose finding on the same line this one replaces")
    priority: int = Field(description="the order in which repairs are applied, lower first")
    tags: list[str]
    active: bool = Field(description="false when what the rule reads is not there (an NCCI table not imported): it never fires")
    sources: list[Source]
    effective: int | None = None


class RuleKind(BaseModel):
    kind: str
    summary: str
    columns: list[str] = Field(description="the columns a rule's table must have")
    optional_columns: list[str]
    variables: list[str] = Field(description="what message and fix templates may use, as {name}")
    cases: list[str] = Field(description="the cases a rule of the kind may word differently")
    repairs: list[str]
    options: dict[str, list[str]]
    glossary: dict[str, str] = Field(description="what each column, variable, case, repair and option means")
    rules: list[str] = Field(description="the loaded rules of this kind")


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
    region: str | None = Field(None, description="the region filter given (the code applies there), else null")


class CodeLevels(BaseModel):
    procedure: str
    region: str = Field(description="a billing region of the code's coverage")
    evidence: str = Field(description="of the coverage at these levels, lowered by any level note (L6 augmentation)")
    levels: list[str] = Field(description="the vertebrae, top to bottom")


class Pair(BaseModel):
    code: str
    label: str
    role: str = Field(description="primary (for an add-on) or add-on (for a primary)")
    family: str
    family_label: str
    reason: str
    inferred: bool
    sources: list[str]


class Bundle(BaseModel):
    direction: str = Field(description="includes or included in")
    code: str
    label: str
    scope: str = Field(description="same session, or same level only")
    bypass_modifiers: list[str]
    bypass_condition: str | None = Field(description="when a bypass modifier applies (at another level, ...)")
    evidence: str
    ncci_pair: str = Field(description="whether CMS's NCCI table is known to hold the pair")
    reason: str
    edit: str
    sources: list[str]


class Conflict(BaseModel):
    code: str
    label: str
    conflict: str
    scope: str
    evidence: str
    reason: str


class CodeDetail(BaseModel):
    """A code's page (kg/facts/page.py): `spinekg code-info CODE --format json` prints the same."""

    model_config = ConfigDict(extra="allow")
    code: str
    iri: str
    label: str
    definition: str | None
    kinds: list[str]
    family: dict[str, Any] = Field(description="id and label")
    procedure: str | None
    regions: list[str] = Field(description="the billing regions of the code's descriptor")
    unit_of_service: str | None
    status: str
    valid_from: str | None
    deleted_on: str | None
    replaced_by: list[str]
    replaces: list[str]
    pairing_note: str | None
    levels: list[CodeLevels] = Field(description="where the code applies: per procedure and billing region, the vertebrae")
    pairs: list[Pair]
    bundles: list[Bundle]
    conflicts: list[Conflict]
    fee_schedule: list[dict[str, Any]] = Field(description="RVUs, national amounts and indicators with their meaning, by year")
    modifiers: dict[str, Any] = Field(description="not_allowed (with reasons), allowed, and the fee schedule year of allowed")
    documentation: list[dict[str, Any]]
    denial_reasons: list[dict[str, Any]]
    sources: list[dict[str, Any]]


class PairsResponse(BaseModel):
    code: str
    pairs: list[Pair]


class BundlesResponse(BaseModel):
    code: str
    bundles: list[Bundle]


class ConflictsResponse(BaseModel):
    code: str
    conflicts: list[Conflict]


class NcciEdit(BaseModel):
    column1: str
    column2: str = Field(description="the code not paid with Column 1")
    modifier_indicator: int = Field(description="0 never together; 1 only with a modifier that shows distinct services")
    meaning: str
    rationale: str
    effective: str | None = Field(description="null where the imported file carries no effective dates")
    deletion: str | None = Field(description="the last day in force; null: open")
    release: str


class NcciEdits(BaseModel):
    code: str
    date: str
    setting: str
    release: str | None
    edits: list[NcciEdit]


class NcciMueValue(BaseModel):
    value: int
    mai: int = Field(description="1 per claim line, 2 per date (policy), 3 per date (clinical)")
    mai_text: str
    rationale: str
    release: str
    in_force_from: str


class NcciMue(BaseModel):
    code: str
    date: str
    service_type: str
    mue: NcciMueValue | None


class NcciPrimaries(BaseModel):
    code: str
    date: str
    add_on: bool
    release: str | None
    edit_types: list[int]
    primaries: list[str]
    contractor_defined: bool = Field(description="true for edit types 2 and 3: the contractor defines (more) primaries")


class Vertebra(BaseModel):
    level: str
    label: str
    region: str
    sequence: int
    transitional: bool
    billing_regions: list[str]
    above: list[str]
    below: list[str]
    alt_labels: list[str] = Field(description="other names a claim may use for the level")


class VertebraDetail(Vertebra):
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
    sparql_isolation: dict[str, Any] | None = Field(
        None, description="how SPARQL workers are confined (network filter, memory limit); null until the first query"
    )


class FieldError(BaseModel):
    model_config = ConfigDict(extra="forbid")
    field: str
    message: str


class ErrorBody(BaseModel):
    """Every error the API sends (api/errors.py); extra="forbid" so that tests catch an undocumented key."""

    model_config = ConfigDict(extra="forbid")
    detail: str = Field(description="what is wrong, in one line")
    field: str | None = Field(None, description="the offending input: a body field, a parameter or a request header")
    errors: list[FieldError] | None = Field(None, description="every invalid field (422 for a request that does not validate)")
    closest: list[str] | None = Field(None, description="known codes closest to an unknown one (404 from /codes/...)")
