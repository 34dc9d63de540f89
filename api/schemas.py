"""Request and response models of the JSON API (field names appear in 422 messages)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, StrictBool, StrictInt, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError

from spinekg.kg.claims.limits import (
    MAX_CLAIM_LINES,
    MAX_DIAGNOSES,
    MAX_DIAGNOSIS_POINTERS,
    MAX_ID_LENGTH,
    MAX_LEVELS_CEILING,
    MAX_LINES_CEILING,
)
from spinekg.kg.claims.parse import parse_id
from spinekg.kg.coding.note import MAX_NOTE_CHARS
from spinekg.kg.coding.record import MAX_BIOPSIES, MAX_IMAGING, MAX_MINUTES, MAX_TREATMENTS
from spinekg.kg.coding.record import MAX_TEXT as MAX_CODING_TEXT
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
Diagnosis = Annotated[str, StringConstraints(max_length=16)]  # its shape is checked by kg (kg/icd10), as on the CLI


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
    diagnosis_pointers: list[StrictInt] = Field(
        default_factory=list,
        max_length=MAX_DIAGNOSIS_POINTERS,
        description="1-based positions in the claim's diagnoses (837P SV107); none: the line points to every diagnosis",
        examples=[[1, 2]],
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
    state: str | None = Field(
        None,
        max_length=8,
        description="USPS code of the state or territory where the service was rendered (GET /queries/states): it picks the "
        "Medicare contractor and its LCD; an unknown one is refused (422 naming state)",
        examples=["OR"],
    )
    contractor: str | None = Field(
        None,
        max_length=8,
        description="a MAC contract number (GET /queries/contracts) whose jurisdiction overrides the state's",
        examples=["02101"],
    )
    diagnoses: list[Diagnosis] = Field(
        default_factory=list,
        max_length=MAX_DIAGNOSES,
        description="ICD-10-CM codes, with or without the dot (M80.08XA or M8008XA); at most 12 (CMS-1500 item 21 A-L)",
        examples=[["M80.08XA", "C79.51"]],
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
    diagnosis_pointers: list[int] | None = Field(None, description="as on the claim's line (present when it had pointers)")


class Suggestion(BaseModel):
    lines: list[SuggestedLine]
    changes: list[str]
    diagnoses: list[str] | None = Field(None, description="the claim's diagnoses, dotted (present when it had any)")


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
    ncci_pair: str = Field(
        description="CMS's NCCI PTP row for the pair in force now (columns, modifier indicator, release), or that there is none"
    )
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
    coverage: list[dict[str, Any]] = Field(
        default_factory=list,
        description="each Medicare contractor's LCD for the code: contractor, jurisdictions, article, how the code is "
        "governed, and what is known of the article's ICD-10-CM lists (GET /codes/{code}/coverage for a state)",
    )
    documentation: list[dict[str, Any]]
    denial_reasons: list[dict[str, Any]]
    sources: list[dict[str, Any]]


class CodeCoverage(BaseModel):
    """GET /codes/{code}/coverage (kg/facts/coverage.py)."""

    code: str
    state: str | None = Field(description="the state asked about (USPS code), or null for every contractor")
    on: str | None = Field(description="the date of service asked about, or null")
    lcds: list[dict[str, Any]] = Field(
        description="the LCDs: contractor, jurisdictions, article, the date from which each is known in force (and, for a "
        "state and date, whether it is), how the code is governed, and the lists' status, groups and imported versions"
    )
    diagnoses: list[dict[str, Any]] | None = Field(
        description="for a state: the ICD-10-CM codes the article's covered groups list for the code, with group, evidence "
        "and the companion code an asterisk code needs; empty when the lists are not known; null without a state"
    )
    note: str


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
    origin: str = Field(
        description="imported: the NCCI release imported with spinekg import ncci; ontology: the rows of our codes "
        "generated into the ontology (edits/ncci-ptp.ttl), which answer when no release is imported",
    )
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


class DiagnosisItem(BaseModel):
    code: str
    title: str | None = None
    billable: bool | None = None
    kind: str | None = None


class IcdRelease(BaseModel):
    id: str
    label: str | None = None
    effective: str | None = None
    until: str | None = Field(None, description="the last date of service it is in force")
    source: str | None = Field(None, description="source id (GET /queries/sources)")
    data: str | None = Field(None, description="where the build read it: the package and version")


class DiagnosisDetail(BaseModel):
    """An ICD-10-CM code's page (kg/facts/diagnoses.py): `spinekg diagnosis CODE --format json` prints the same."""

    model_config = ConfigDict(extra="allow")
    code: str = Field(description="dotted, as the tabular list writes it")
    iri: str
    title: str = Field(description="the official title (US government, public domain)")
    billable: bool = Field(description="valid for submission: a code without subdivisions")
    kind: str = Field(description="category or code (a subcategory, or a code with its seventh character)")
    release: IcdRelease = Field(description="the release the page answers from: in force on `on`, else the latest loaded")
    ancestors: list[DiagnosisItem] = Field(description="nearest first, up to the block and the chapter")
    children_count: int
    children: list[DiagnosisItem]
    children_truncated: bool
    billable_examples: list[str] = Field(description="for a header: the first billable codes under it")
    releases: list[IcdRelease] = Field(description="the loaded releases that hold the code")
    listed_in: list[dict[str, Any]] = Field(description="coverage groups that list it (the named query diagnosis-listed-in)")


class ErrorBody(BaseModel):
    """Every error the API sends (api/errors.py); extra="forbid" so that tests catch an undocumented key."""

    model_config = ConfigDict(extra="forbid")
    detail: str = Field(description="what is wrong, in one line")
    field: str | None = Field(None, description="the offending input: a body field, a parameter or a request header")
    errors: list[FieldError] | None = Field(None, description="every invalid field (422 for a request that does not validate)")
    closest: list[str] | None = Field(None, description="known codes closest to an unknown one (404 from /codes/...)")


# ---------------------------------------------------------------- POST /coding, POST /coding/note (kg/coding)
# The shapes are checked here; the values of the enumerated fields (device, approach, access, imaging,
# injections, fracture imaging) are the graph's note terms, so kg checks them (a 422 naming the field) and
# a new device needs no change here.

CodingLevel = Annotated[str, StringConstraints(max_length=16)]
CodingText = Annotated[str, StringConstraints(max_length=MAX_CODING_TEXT)]
CODING_DATE = r"^\d{4}-\d{2}-\d{2}$"
RECORD_EXAMPLE: dict[str, Any] = {
    "date_of_service": "2026-05-05",
    "treatments": [
        {"level": "T7", "cavity_created": True, "device": "curette", "approach": "bilateral"},
        {"level": "L3", "cavity_created": True},
        {"level": "L4", "cavity_created": True},
    ],
    "biopsies": [{"level": "L1"}],
    "imaging": ["fluoroscopy", "ct"],
    "sacroplasty": None,
}
NOTE_EXAMPLE: dict[str, Any] = {
    "text": "Under fluoroscopic and CT guidance a cavity was created with a curette and PMMA injected at T7, L3 and L4 "
    "(bilateral transpedicular at T7). A bone biopsy was taken from a separate lesion at L1.",
    "date_of_service": "2026-05-05",
}


class _CodingInput(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TreatmentIn(_CodingInput):
    level: CodingLevel | None = Field(
        None, description="the treated vertebra (C1-C7, T1-T12, L1-L6, S1-S5, Co); none: not codable"
    )
    cavity_created: StrictBool | None = Field(None, description="a mechanical cavity was made before the cement (augmentation)")
    device: CodingText | None = Field(
        None, description="the cavity device: balloon, curette, mechanical device (GET /queries/coding-note-terms)"
    )
    approach: CodingText | None = Field(None, description="unilateral or bilateral access")
    access: CodingText | None = Field(None, description="transpedicular, parapedicular, extrapedicular or posterolateral")


class BiopsyIn(_CodingInput):
    level: CodingLevel | None = Field(None, description="the biopsied vertebra")
    same_access: StrictBool | None = Field(None, description="taken through the access of a treated body (so of that body)")


class SacroplastyIn(_CodingInput):
    injections: CodingText | None = Field(None, description="unilateral (0200T) or bilateral (0201T)")
    levels: list[CodingLevel] = Field(
        default_factory=list, max_length=32, description="the sacral segments, when the note names them"
    )


class SedationIn(_CodingInput):
    minutes: StrictInt | None = Field(None, ge=0, le=MAX_MINUTES, description="intraservice time of the moderate sedation")
    independent_observer: StrictBool | None = Field(None, description="an independent trained observer was present")


class NecessityIn(_CodingInput):
    failed_conservative_care: StrictBool | None = Field(None, description="pain despite optimal non-surgical management")
    pain_score: StrictInt | None = Field(None, ge=0, le=10, description="NRS or VAS, 0-10")
    fracture_imaging: CodingText | None = Field(
        None, description="the imaging that confirms an acute or subacute fracture: MRI, bone scan, SPECT, CT"
    )


class ProcedureRecordIn(_CodingInput):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [RECORD_EXAMPLE]})
    date_of_service: str | None = Field(None, pattern=CODING_DATE, description="YYYY-MM-DD; default today")
    place_of_service: str | None = Field(None, pattern=r"^\d{2}$", description="CMS place-of-service code")
    state: CodingText | None = Field(
        None, description="where the service was rendered (passed to the claim when the claim contract has it)"
    )
    contractor: CodingText | None = Field(
        None, description="the MAC contract number (passed to the claim when the claim contract has it)"
    )
    diagnoses: list[CodingText] = Field(default_factory=list, max_length=MAX_DIAGNOSES, description="ICD-10-CM codes")
    treatments: list[TreatmentIn] = Field(
        default_factory=list, max_length=MAX_TREATMENTS, description="the treated bodies, in the order treated"
    )
    biopsies: list[BiopsyIn] = Field(default_factory=list, max_length=MAX_BIOPSIES)
    imaging: list[CodingText] = Field(
        default_factory=list, max_length=MAX_IMAGING, description="fluoroscopy, ct (never coded; documented)"
    )
    sacroplasty: SacroplastyIn | None = None
    sedation: SedationIn | None = Field(None, description="moderate sedation by the operating physician")
    anesthesia_by_other_provider: StrictBool = Field(False, description="sedation or anesthesia given by an anesthesia provider")
    necessity: NecessityIn | None = None


class NoteIn(_CodingInput):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [NOTE_EXAMPLE]})
    text: str = Field(
        max_length=MAX_NOTE_CHARS, description=f"the operative-note paragraph (at most {MAX_NOTE_CHARS} characters)"
    )
    date_of_service: str | None = Field(None, pattern=CODING_DATE, description="YYYY-MM-DD; wins over a date in the note")
    place_of_service: str | None = Field(None, pattern=r"^\d{2}$")
    state: CodingText | None = None
    contractor: CodingText | None = None
    diagnoses: list[CodingText] | None = Field(
        None, max_length=MAX_DIAGNOSES, description="wins over the codes found in the note"
    )


class CodedLine(BaseModel):
    code: str
    units: int
    levels: list[str]
    modifiers: list[str]


class Explanation(BaseModel):
    line: int | None = Field(description="the line explained (1-based), or null for what is documented but not a line")
    code: str | None
    subject: str | None = Field(None, description="for a note without a line: what it is about (an included biopsy, imaging)")
    why: str
    rules: list[str] = Field(description="the coding rules (ontology/coding.ttl), bundling edits or claim rules applied")
    fact_sheet_rules: list[str] = Field(description="the fact sheet's rule numbers (R1-R18) they restate")
    evidence: str | None = Field(description="the weakest evidence status among them")
    sources: list[Source]


class DocumentationGap(BaseModel):
    element: str = Field(description="the documentation element (ontology/coding.ttl) or coverage guideline")
    missing: str
    requirement: str = Field(description="the documentation requirement or coverage guideline that needs it")
    why: str
    fix: str | None
    fact_sheet_rule: str | None
    evidence: str
    sources: list[Source]


class CodingWarning(BaseModel):
    rule: str = Field(description="the coding rule, documentation element or claim rule behind it")
    message: str
    evidence: str | None
    sources: list[Source]


class Evidence(BaseModel):
    field: str = Field(description="the record field, e.g. treatments[0].level")
    value: Any
    text: list[str] = Field(description="the words of the note it came from")
    spans: list[list[int]] = Field(description="[start, end) character offsets into the note")


class NotUsed(BaseModel):
    text: str
    spans: list[list[int]]
    why: str


class Extracted(BaseModel):
    source: str = Field(description="record or note")
    record: dict[str, Any] = Field(
        description="the procedure record coded: for a note, what was read (correct it and POST it to /coding)"
    )
    evidence: list[Evidence]
    not_used: list[NotUsed] = Field(description="levels the note names but that were not taken as done, and why")


class CodingResult(BaseModel):
    lines: list[CodedLine]
    explanations: list[Explanation]
    documentation_gaps: list[DocumentationGap]
    warnings: list[CodingWarning]
    extracted: Extracted
    claim: dict[str, Any] = Field(description="the lines as a claim, ready for POST /claims/validate")
