"""Import rows of a CMS PFS relative value file (PPRRVU*.csv) as a Turtle module of fee schedule records.

Only the codes the ontology already knows are imported, and never the DESCRIPTION column (CPT
descriptors are AMA-copyrighted). The output is a source file of the ontology: review it and
commit it, then list it in catalog-v001.xml and the owl:imports of spinekg.ttl.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from rdflib import Graph, Literal, URIRef

from spinekg.kg.errors import InputError
from spinekg.kg.namespaces import PREFIXES

# Joined header text (the 4 header lines above the data, per column) -> our field name.
COLUMNS = {
    "HCPCS": "hcpcs",
    "MOD": "mod",
    "STATUS CODE": "status",
    "WORK RVU": "work",
    "NON-FAC PE RVU": "nf_pe",
    "NON-FAC NA INDICATOR": "nf_na",
    "FACILITY PE RVU": "f_pe",
    "FACILITY NA INDICATOR": "f_na",
    "MP RVU": "mp",
    "NON-FACILITY TOTAL": "nf_total",
    "FACILITY TOTAL": "f_total",
    "PCTC IND": "pctc",
    "GLOB DAYS": "glob",
    "PRE OP": "pre",
    "INTRA OP": "intra",
    "POST OP": "post",
    "MULT PROC": "mult",
    "BILAT SURG": "bilat",
    "ASST SURG": "asst",
    "CO- SURG": "co",
    "TEAM SURG": "team",
    "CONV FACTOR": "cf",
}
INDICATORS = {
    "status": "status",
    "pctc": "pctc",
    "glob": "global",
    "mult": "mult",
    "bilat": "bilat",
    "asst": "asst",
    "co": "co",
    "team": "team",
}
DECIMALS = {
    "work": "workRvu",
    "nf_pe": "nonFacilityPeRvu",
    "f_pe": "facilityPeRvu",
    "mp": "malpracticeRvu",
    "nf_total": "nonFacilityTotalRvu",
    "f_total": "facilityTotalRvu",
    "pre": "preOperativeShare",
    "intra": "intraOperativeShare",
    "post": "postOperativeShare",
}


@dataclass(frozen=True)
class Component:
    """A modifier that selects a component row of the file (26, TC): the local name of its IRI under
    the mod: prefix and its name, both from ontology/modifiers.ttl."""

    local_name: str
    name: str


@dataclass(frozen=True)
class Vocabulary:
    """What the importer takes from the ontology: the codes it knows (only their rows are imported) and
    the component modifiers by notation."""

    codes: frozenset[str]
    components: Mapping[str, Component]


def vocabulary(graph: Graph) -> Vocabulary:
    """The codes (notations of cpt: individuals) and the component modifiers of the asserted ontology: a
    component modifier is one the PC/TC indicator governs, named by its skos:altLabel."""
    notation = URIRef(PREFIXES["skos"] + "notation")
    codes = frozenset(str(o) for s, o in graph.subject_objects(notation) if str(s).startswith(PREFIXES["cpt"]))
    components = {}
    governs = URIRef(PREFIXES["skg"] + "governedByIndicator")
    for modifier in graph.subjects(governs, URIRef(PREFIXES["ind"] + "PcTcIndicator")):
        code, name = graph.value(modifier, notation), graph.value(modifier, URIRef(PREFIXES["skos"] + "altLabel"))
        if isinstance(code, Literal) and isinstance(name, Literal) and str(modifier).startswith(PREFIXES["mod"]):
            components[str(code)] = Component(str(modifier).removeprefix(PREFIXES["mod"]), str(name))
    return Vocabulary(codes, components)


@dataclass
class PfsFile:
    title: str
    released: str | None
    rows: list[dict[str, str]]


def read_pprrvu(path: Path) -> PfsFile:
    """Read a PPRRVU CSV: notice lines, multi-line column headers, then data rows."""
    try:
        with path.open(newline="", encoding="latin-1") as fh:
            lines = list(csv.reader(fh))
    except OSError as exc:
        raise InputError("PPRRVU.csv", f"cannot read {path}: {exc.strerror}") from exc
    header_at = next((i for i, r in enumerate(lines) if r[:2] == ["HCPCS", "MOD"]), None)
    if header_at is None:
        raise InputError("PPRRVU.csv", f"{path.name}: no 'HCPCS,MOD,...' header line; is this a CMS PPRRVU file?")
    notices = [" ".join(c for c in r if c.strip()).strip() for r in lines[:header_at]]
    title = next((n for n in notices if "Relative Value File" in n), path.name)
    released = next((m.group(1) for n in notices if (m := re.search(r"RELEASED (\d\d/\d\d/\d{4})", n))), None)
    width = len(lines[header_at])
    names = []
    for col in range(width):
        parts = [lines[i][col].strip() for i in range(max(0, header_at - 3), header_at + 1) if col < len(lines[i])]
        names.append(" ".join(p for p in parts if p))
    index: dict[str, int] = {}
    for col, name in enumerate(names):
        for pattern, field in COLUMNS.items():
            if name.endswith(pattern) and field not in index and (pattern != "MOD" or col == 1):
                if pattern in ("FACILITY PE RVU", "FACILITY TOTAL") and "NON" in name:
                    continue
                index[field] = col
    missing = sorted(set(COLUMNS.values()) - set(index))
    if missing:
        raise InputError("PPRRVU.csv", f"{path.name}: columns not found: {', '.join(missing)}")
    rows = []
    for raw in lines[header_at + 1 :]:
        if len(raw) < width or not raw[0].strip():
            continue
        rows.append({field: raw[col].strip() for field, col in index.items()})
    return PfsFile(title, released, rows)


def _decimal(value: str, where: str) -> str:
    try:
        return str(Decimal(value))
    except InvalidOperation as exc:
        raise InputError("PPRRVU.csv", f"{where}: {value!r} is not a number") from exc


def pfs_to_turtle(path: Path, year: int, source: str, known: Vocabulary) -> str:
    """The Turtle module for the rows of the ontology's codes in a PPRRVU file (deterministic order)."""
    pfs = read_pprrvu(path)
    rows = sorted((r for r in pfs.rows if r["hcpcs"] in known.codes), key=lambda r: (r["hcpcs"], r["mod"]))
    if not rows:
        raise InputError("PPRRVU.csv", f"{path.name}: none of the ontology's codes is in the file")
    factors = {r["cf"] for r in rows}
    if len(factors) != 1:
        raise InputError("PPRRVU.csv", f"{path.name}: rows disagree on the conversion factor: {sorted(factors)}")
    cf = _decimal(factors.pop(), "CONV FACTOR")
    module = f"https://w3id.org/spinekg/ontology/payment/pfs-{year}"
    released = ""
    if pfs.released:
        stamp = datetime.strptime(pfs.released, "%m/%d/%Y").strftime("%Y-%m-%dT00:00:00")
        released = f' ;\n    skg:releasedOn "{stamp}"^^xsd:dateTime'
    out = [
        "@prefix skg:     <https://w3id.org/spinekg/vocab/> .",
        "@prefix cpt:     <https://w3id.org/spinekg/code/cpt/> .",
        "@prefix pfs:     <https://w3id.org/spinekg/pfs/> .",
        "@prefix ind:     <https://w3id.org/spinekg/indicator/> .",
        "@prefix mod:     <https://w3id.org/spinekg/modifier/> .",
        "@prefix src:     <https://w3id.org/spinekg/source/> .",
        "@prefix owl:     <http://www.w3.org/2002/07/owl#> .",
        "@prefix rdfs:    <http://www.w3.org/2000/01/rdf-schema#> .",
        "@prefix xsd:     <http://www.w3.org/2001/XMLSchema#> .",
        "@prefix dcterms: <http://purl.org/dc/terms/> .",
        "",
        f"<{module}>",
        "    a owl:Ontology ;",
        f"    owl:versionIRI <{module}/releases/{year}> ;",
        "    owl:imports <https://w3id.org/spinekg/ontology/vocab>, <https://w3id.org/spinekg/ontology/sources>,",
        "        <https://w3id.org/spinekg/ontology/payment/indicators>, <https://w3id.org/spinekg/ontology/modifiers> ;",
        f'    rdfs:label "spinekg {year} Medicare physician fee schedule values"@en ;',
        f'    dcterms:description "Generated by spinekg import-pfs from {path.name} ({pfs.title}); one record per code and'
        f' component row. Values are as printed by CMS; national amounts are total RVUs times the conversion factor."@en .',
        "",
        f"pfs:release-{year} a owl:NamedIndividual, skg:FeeScheduleRelease ;",
        f'    rdfs:label "{pfs.title}"@en ;',
        f"    skg:feeScheduleYear {year} ; skg:conversionFactor {cf}{released} ;",
        f"    dcterms:source src:{source} ; skg:effectiveYear {year} .",
    ]
    for r in rows:
        code, modifier = r["hcpcs"], r["mod"]
        where = f"{path.name} {code}{'-' + modifier if modifier else ''}"
        suffix = f"-{modifier}" if modifier else ""
        component = known.components.get(modifier) if modifier else None
        if modifier and component is None:
            expected = ", ".join(sorted(known.components)) or "none"
            raise InputError("PPRRVU.csv", f"{where}: unexpected modifier row {modifier!r} (component modifiers: {expected})")
        part = f" ({component.name})" if component else ""
        lines = [
            f"pfs:{year}-{code}{suffix} a owl:NamedIndividual, skg:FeeScheduleRecord ;",
            f'    rdfs:label "{year} fee schedule record for {code}{part}"@en ;',
            f"    skg:recordFor cpt:{code} ; skg:inRelease pfs:release-{year} ; skg:feeScheduleYear {year} ;",
        ]
        if component:
            lines.append(f"    skg:componentModifier mod:{component.local_name} ;")
        values = " ; ".join(f"skg:{prop} {_decimal(r[field], where)}" for field, prop in DECIMALS.items())
        lines.append(f"    {values} ;")
        # The layout's NA indicator fields are blank unless the setting is not applicable (RVU25D-layout.txt).
        flags = [
            f"skg:nonFacilityNotApplicable {'true' if r['nf_na'] else 'false'}",
            f"skg:facilityNotApplicable {'true' if r['f_na'] else 'false'}",
        ]
        lines.append(f"    {' ; '.join(flags)} ;")
        indicators = ", ".join(f"ind:{slug}-{r[field]}" for field, slug in INDICATORS.items())
        lines.append(f"    skg:hasIndicator {indicators} ;")
        lines.append(f"    dcterms:source src:{source} ; skg:effectiveYear {year} .")
        out.append("")
        out.extend(lines)
    return "\n".join(out) + "\n"
