"""A code's page (kg/facts/page.py) as text a coder reads in a terminal: the same facts as the JSON,
laid out; nothing here decides anything about billing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from spinekg.kg.facts.table import grouped

WIDTH = 22  # the label column of the summary lines


def _joined(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


def _evidence(item: Mapping[str, Any]) -> str:
    sources = _joined(item.get("sources"))
    return f"[{item['evidence']}; {sources}]" if sources else f"[{item['evidence']}]"


def code_page_text(page: Mapping[str, Any]) -> str:
    """The page as lines: a summary, then levels, bundling, conflicts, fees, modifiers, documentation
    and sources (each section only when the page has something in it)."""
    out = [f"{page['code']}  {page['label']}", ""]
    if page.get("definition"):
        out += [str(page["definition"]), ""]

    def field(name: str, value: Any) -> None:
        text = _joined(value)
        if text:
            out.append(f"  {name:<{WIDTH}} {text}")

    def section(title: str, lines: list[str]) -> None:
        if lines:
            out.extend(["", title, *lines])

    field("kind", page["kinds"])
    field("family", page["family"]["label"])
    field("procedure", page["procedure"])
    field("region", page["regions"])
    field("unit", page["unit_of_service"])
    field("status", page["status"])
    field("valid from", page["valid_from"])
    field("deleted on", page["deleted_on"])
    field("replaced by", page["replaced_by"])
    field("replaces", page["replaces"])
    field("pairing note", page["pairing_note"])
    for role, partners in grouped(page["pairs"], by="role").items():
        field(f"pairs with ({role})", [p["code"] for p in partners])
    modifiers = page["modifiers"]
    year = f" ({modifiers['year']})" if modifiers["year"] else ""
    field(f"modifiers allowed{year}", modifiers["allowed"])
    field("modifiers not allowed", sorted({m["modifier"] for m in modifiers["not_allowed"]}))

    section(
        "Levels:",
        [f"  {lv['procedure']}, {lv['region']}: {_joined(lv['levels'])} [{lv['evidence']}]" for lv in page["levels"]],
    )
    bundling = []
    for b in page["bundles"]:
        bypass = ""
        if b["bypass_modifiers"]:
            bypass = f"; {b.get('bypass_condition') or 'bypass'}: {_joined(b['bypass_modifiers'])}"
        bundling.append(f"  {b['direction']} {b['code']} ({b['scope']}{bypass}) {_evidence(b)}")
    section("Bundling:", bundling)
    conflicts: dict[tuple[str, str, str], list[str]] = {}
    for c in page["conflicts"]:
        conflicts.setdefault((c["conflict"], c["scope"], c["evidence"]), []).append(c["code"])
    section(
        "Not billed with:",
        [f"  {', '.join(codes)}: {conflict} ({scope}) [{evidence}]" for (conflict, scope, evidence), codes in conflicts.items()],
    )
    fees = []
    for f in page["fee_schedule"]:
        amount = f["national_amount"]
        amounts = amount["note"] or f"non-facility ${amount['non_facility']}, facility ${amount['facility']}"
        rvu = f["rvu"]
        fees.append(
            f"  {f['year']} {f['component']:<6} status {f['status']['value']}, global {f['global_days']['value']}, "
            f"work {rvu['work']}, total RVU {rvu['total_non_facility']} NF / {rvu['total_facility']} F, "
            f"CF {f['conversion_factor']}: {amounts}"
        )
        indicators = ", ".join(f"{name.replace('_', ' ')} {v['value']}" for name, v in f["indicators"].items())
        fees.append(f"         indicators: {indicators} [{f['source']}]")
    section("Medicare physician fee schedule (national, no geographic adjustment):", fees)
    seen = set()
    not_allowed = []
    for m in modifiers["not_allowed"]:
        if (m["modifier"], m["restriction"]) not in seen:
            seen.add((m["modifier"], m["restriction"]))
            years = f" (fee schedule {_joined(m['years'])})" if m["years"] else ""
            not_allowed.append(f"  {m['modifier']:<3} {m['reason']}{years} {_evidence(m)}")
    section("Modifiers not allowed:", not_allowed)
    lcds = []
    for c in page.get("coverage") or []:
        lists = c["lists"]
        known = f"{lists['groups']} group(s), {lists['diagnoses']} diagnoses" if lists["groups"] else "no list known"
        imported = f"; imported {_joined(lists['imported_versions'])}" if lists["imported_versions"] else ""
        lcds.append(
            f"  {c['lcd']} {c['contractor']} ({_joined(c['jurisdictions'])}), article {c['article']}, known in force from "
            f"{c['known_from']}; the code: {c['governed']['how']} [{c['governed']['evidence']}]; ICD-10-CM lists: "
            f"{lists['status']} ({known}{imported})"
        )
    section("Medicare coverage (each contractor's LCD):", lcds)
    section("Documentation:", [f"  - {d['text']} {_evidence(d)}" for d in page["documentation"]])
    section(
        "Denial reasons:",
        [f"  - {d['text']}{' (rule ' + d['rule'] + ')' if d.get('rule') else ''} {_evidence(d)}" for d in page["denial_reasons"]],
    )
    section(
        "Sources:",
        [f"  {s['id']:<9} {s['tier']}  {s['title']}{' <' + s['url'] + '>' if s.get('url') else ''}" for s in page["sources"]],
    )
    return "\n".join(out)
