"""Everything the graph knows about one code, gathered from the named queries."""

from __future__ import annotations

import difflib
import re
from decimal import Decimal
from typing import Any

from spinekg.kg.errors import InputError
from spinekg.kg.graph import KnowledgeGraph
from spinekg.kg.queries import get_query

CODE_PATTERN = re.compile(r"[0-9A-Z]{5}")


def known_codes(graph: KnowledgeGraph) -> list[str]:
    return [row["code"] for row in get_query("codes").run(graph).values()]


def closest_codes(graph: KnowledgeGraph, code: str, n: int = 3) -> list[str]:
    return difflib.get_close_matches(code, known_codes(graph), n=n, cutoff=0.6)


class UnknownCodeError(InputError):
    def __init__(self, code: str, closest: list[str]) -> None:
        hint = f"; closest known codes: {', '.join(closest)}" if closest else ""
        super().__init__("code", f"{code!r} is not a code the graph knows{hint}")
        self.code = code
        self.closest = closest


def normalise_code(code: str) -> str:
    value = code.strip().upper() if code.isascii() else code
    if not CODE_PATTERN.fullmatch(value):
        raise InputError("code", f"{code!r} is not a CPT/HCPCS code (five letters or digits, e.g. 22512)")
    return value


def _money(value: Any) -> str | None:
    return None if value is None else f"{Decimal(str(value)):.2f}"


def code_info(graph: KnowledgeGraph, code: str) -> dict[str, Any]:
    """One dictionary with facts, pairs, bundles, conflicts, modifiers, fee schedule and sources."""
    code = normalise_code(code)
    facts = get_query("code-facts").run(graph, {"code": code}).values()
    if not facts:
        raise UnknownCodeError(code, closest_codes(graph, code))
    params = {"code": code}
    fee = get_query("fee-schedule").run(graph, params).values()
    for row in fee:
        row["nonFacilityAmount"] = _money(row.get("nonFacilityAmount"))
        row["facilityAmount"] = _money(row.get("facilityAmount"))
    info = dict(facts[0])
    bundles = get_query("bundled-with").run(graph, params).values()
    for row in bundles:
        for key in ("bypassModifiers", "sources"):
            row[key] = ", ".join(sorted(filter(None, (row.get(key) or "").split(", "))))
    info.update(
        {
            "pairs": get_query("pairs-with").run(graph, params).values(),
            "bundles": bundles,
            "conflicts": get_query("conflicts-with").run(graph, params).values(),
            "modifiers_not_allowed": get_query("modifiers-not-allowed").run(graph, params).values(),
            "fee_schedule": fee,
            "sources": get_query("code-sources").run(graph, params).values(),
        }
    )
    return info


def format_code_info(info: dict[str, Any]) -> str:
    """A page a coder can read in a terminal."""
    out = [f"{info['code']}  {info['label']}", ""]
    if info.get("definition"):
        out += [str(info["definition"]), ""]

    def field(name: str, value: Any) -> None:
        if value not in (None, "", []):
            out.append(f"  {name:<18} {value}")

    field("kind", info.get("kinds"))
    field("family", info.get("familyName"))
    field("procedure", info.get("procedure"))
    field("region", info.get("regions"))
    field("unit", info.get("unitOfService"))
    field("valid from", info.get("validFrom") and str(info["validFrom"])[:10])
    field("deleted on", info.get("deletedOn") and str(info["deletedOn"])[:10])
    field("replaced by", info.get("replacedBy"))
    field("replaces", info.get("replaces"))
    field("pairing note", info.get("primaryListGap"))
    pairs = info["pairs"]
    if pairs:
        role = pairs[0]["role"]
        label = "primaries" if role == "primary" else "add-ons"
        field(f"pairs with ({label})", ", ".join(p["partner"] for p in pairs))
    mods = info["modifiers_not_allowed"]
    if mods:
        field("modifiers not allowed", ", ".join(sorted({m["modifier"] for m in mods})))
    if info["bundles"]:
        out += ["", "Bundling:"]
        for b in info["bundles"]:
            bypass = ""
            if b.get("bypassModifiers"):
                where = "at another level" if b["scope"] == "same level" else "if for a separate procedure"
                bypass = f"; {where}: {b['bypassModifiers']}"
            out.append(f"  {b['direction']} {b['otherCode']} ({b['scope']}{bypass}) [{b['status']}; {b['sources']}]")
    conflicts = [c for c in info["conflicts"] if c["conflict"] == "one primary per family per session"]
    if conflicts:
        out += [
            "",
            "Not in the same session as: "
            + ", ".join(c["otherCode"] for c in conflicts)
            + " (one primary per family per session)",
        ]
    if info["fee_schedule"]:
        out += ["", "Medicare physician fee schedule (national, no geographic adjustment):"]
        for f in info["fee_schedule"]:
            if f["status"] == "C":
                amounts = "contractor-priced"
            else:
                amounts = f"non-facility ${f['nonFacilityAmount']}, facility ${f['facilityAmount']}"
            out.append(
                f"  {f['year']} {f['component']:<6} status {f['status']}, global {f['globalDays']}, "
                f"work {f['workRvu']}, total RVU {f['nonFacilityTotalRvu']} NF / {f['facilityTotalRvu']} F, "
                f"CF {f['conversionFactor']}: {amounts}"
            )
            out.append(
                f"         indicators: mult {f['multipleProcedure']}, bilat {f['bilateral']}, asst {f['assistant']}, "
                f"co {f['coSurgeons']}, team {f['team']}, PC/TC {f['pcTc']} [{f['sourceId']}]"
            )
    if mods:
        out += ["", "Modifiers not allowed:"]
        seen = set()
        for m in mods:
            key = (m["modifier"], m["restriction"])
            if key not in seen:
                seen.add(key)
                out.append(f"  {m['modifier']:<3} {m['rationale']} [{m['status']}; {m['sources']}]")
    if info["sources"]:
        out += ["", "Sources:"]
        seen_ids = set()
        for s in info["sources"]:
            if s["sourceId"] not in seen_ids:
                seen_ids.add(s["sourceId"])
                url = f" <{s['url']}>" if s.get("url") else ""
                out.append(f"  {s['sourceId']:<9} {s['tier']}  {s['title']}{url}")
    return "\n".join(out)
