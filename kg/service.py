"""Everything a front end (the HTTP API, a notebook) asks of the knowledge graph, in one object that is
built once per process: lookups over the named queries (cached: the graph is read-only), claim
validation, read-only SPARQL and the merged ontology."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any, TypeVar

from spinekg.kg.claims import ClaimValidator
from spinekg.kg.claims.checkers import source_order
from spinekg.kg.codeinfo import UnknownCodeError, closest_codes, normalise_code
from spinekg.kg.errors import InputError
from spinekg.kg.export import export_graph
from spinekg.kg.graph import KnowledgeGraph
from spinekg.kg.queries import NamedQuery, discover, get_query
from spinekg.kg.sparql import SparqlPool, SparqlPoolConfig, SparqlRequest, SparqlResult

T = TypeVar("T")


class UnknownVertebraError(InputError):
    def __init__(self, level: str, known: list[str]) -> None:
        super().__init__("level", f"{level!r} is not a vertebra; known: {', '.join(known)}")


class KnowledgeService:
    def __init__(self, graph: KnowledgeGraph, sparql_workers: int = 2, cache_size: int = 4096) -> None:
        self.graph = graph
        self.validator = ClaimValidator(graph)
        self._cache: OrderedDict[Any, Any] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._pool: SparqlPool | None = None
        self._sparql_workers = sparql_workers
        self._named = {q.name: q for q in discover("api")}
        self.codes_known = {r["code"] for r in self.query("codes")}
        self.modifiers_known = [r["modifier"] for r in self.query("modifiers")]

    # ------------------------------------------------------------------ cache

    def _cached(self, key: Any, compute: Callable[[], T]) -> T:
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]  # type: ignore[no-any-return]
        value = compute()
        with self._lock:
            self._cache[key] = value
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return value

    # ------------------------------------------------------------------ named queries

    def named_queries(self) -> list[NamedQuery]:
        return discover("api")

    def named_query(self, name: str) -> NamedQuery:
        query = self._named.get(name)
        return query if query is not None else get_query(name, kinds=("api",))

    def query_table(self, name: str, params: Mapping[str, str] | None = None) -> tuple[list[str], list[dict[str, Any]]]:
        """Columns and rows of a named query; results are cached per (name, parameters)."""
        params = dict(params or {})
        query = self.named_query(name)

        def run() -> tuple[list[str], list[dict[str, Any]]]:
            result = query.run(self.graph, params)
            return result.variables, [_jsonable(r) for r in result.values()]

        return self._cached(("query", name, tuple(sorted(params.items()))), run)

    def query(self, name: str, params: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        return self.query_table(name, params)[1]

    # ------------------------------------------------------------------ codes

    def code_or_404(self, code: str) -> str:
        value = normalise_code(code)
        if value not in self.codes_known:
            raise UnknownCodeError(value, closest_codes(self.graph, value))
        return value

    def codes(
        self, family: str | None = None, kind: str | None = None, region: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        params = {k: v for k, v in {"family": family, "kind": kind, "region": region, "status": status}.items() if v}
        return [
            {
                "code": r["code"],
                "label": r["label"],
                "family": r["codeFamily"],
                "kind": r["codeKind"],
                "status": r["codeStatus"],
            }
            for r in self.query("codes", params)
        ]

    def code(self, code: str) -> dict[str, Any]:
        code = self.code_or_404(code)
        return self._cached(("code", code), lambda: self._code_detail(code))

    def _code_detail(self, code: str) -> dict[str, Any]:
        p = {"code": code}
        facts = self.query("code-facts", p)[0]
        fee = self.query("fee-schedule", p)
        disallowed = self.query("modifiers-not-allowed", p)
        latest = max((int(r["year"]) for r in fee), default=None)
        banned_now = sorted(
            {
                m["modifier"]
                for m in disallowed
                if not m.get("years") or (latest is not None and str(latest) in m["years"].split(", "))
            }
        )
        docs = self.query("code-documentation", p)
        return {
            "code": code,
            "label": facts["label"],
            "definition": facts.get("definition"),
            "kinds": _split(facts.get("kinds")),
            "family": {"id": facts.get("family"), "label": facts.get("familyName")},
            "procedure": facts.get("procedure"),
            "regions": _split(facts.get("regions")),
            "unit_of_service": facts.get("unitOfService"),
            "status": "deleted" if facts.get("deletedOn") else "active",
            "valid_from": _day(facts.get("validFrom")),
            "deleted_on": _day(facts.get("deletedOn")),
            "replaced_by": _split(facts.get("replacedBy")),
            "replaces": _split(facts.get("replaces")),
            "pairing_note": facts.get("primaryListGap"),
            "fee_schedule": [_fee_row(r) for r in fee],
            "modifiers": {
                "not_allowed": [
                    {
                        "modifier": m["modifier"],
                        "reason": m["rationale"],
                        "evidence": m["status"],
                        "years": _split(m.get("years"), ", "),
                        "sources": _split(m.get("sources"), ", "),
                    }
                    for m in disallowed
                ],
                "allowed": [m for m in self.modifiers_known if m not in banned_now],
                "year": latest,
            },
            "documentation": [
                {"text": d["text"], "evidence": d["status"], "sources": _split(d["sources"], ", ")}
                for d in docs
                if d["kind"] == "documentation"
            ],
            "denial_reasons": [
                {
                    "text": d["text"],
                    "rule": d.get("rule"),
                    "evidence": d["status"],
                    "sources": _split(d["sources"], ", "),
                }
                for d in docs
                if d["kind"] == "denial"
            ],
            "sources": self.sources_of(code),
        }

    def sources_of(self, code: str) -> list[dict[str, Any]]:
        seen: dict[str, dict[str, Any]] = {}
        for r in self.query("code-sources", {"code": code}):
            entry = seen.setdefault(
                r["sourceId"],
                {
                    "id": r["sourceId"],
                    "title": r["title"],
                    "tier": r["tier"],
                    "url": r.get("url"),
                    "year": r.get("year"),
                    "about": [],
                },
            )
            if r["about"] not in entry["about"]:
                entry["about"].append(r["about"])
        return list(seen.values())

    def pairs(self, code: str) -> dict[str, Any]:
        code = self.code_or_404(code)
        return self._cached(("pairs", code), lambda: self._pairs(code))

    def _pairs(self, code: str) -> dict[str, Any]:
        rows = self.query("pairs-with", {"code": code})
        source_ids = sorted({s["id"] for s in self.sources_of(code) if "code" in s["about"]}, key=source_order)
        return {
            "code": code,
            "pairs": [
                {
                    "code": r["partner"],
                    "label": r["partnerLabel"],
                    "role": r["role"],
                    "family": r["family"],
                    "reason": (
                        f"{code} is the add-on of the {r['familyLabel']} family; it pairs with every primary of the family"
                        if r["role"] == "primary"
                        else f"{r['partner']} is the add-on of the {r['familyLabel']} family to which {code} belongs"
                    ),
                    "inferred": True,
                    "sources": source_ids,
                }
                for r in rows
            ],
        }

    def bundles(self, code: str) -> dict[str, Any]:
        code = self.code_or_404(code)
        return self._cached(("bundles", code), lambda: self._bundles(code))

    def _bundles(self, code: str) -> dict[str, Any]:
        return {
            "code": code,
            "bundles": [
                {
                    "direction": r["direction"],
                    "code": r["otherCode"],
                    "label": r["otherLabel"],
                    "scope": r["scope"],
                    "bypass_modifiers": sorted(_split(r.get("bypassModifiers"), ", ")),
                    "evidence": r["status"],
                    "ncci_pair": r["ncciPair"],
                    "reason": r["rationale"],
                    "edit": r["edit"],
                    "sources": sorted(_split(r.get("sources"), ", "), key=source_order),
                }
                for r in self.query("bundled-with", {"code": code})
            ],
        }

    def conflicts(self, code: str) -> dict[str, Any]:
        code = self.code_or_404(code)
        return self._cached(("conflicts", code), lambda: self._conflicts(code))

    def _conflicts(self, code: str) -> dict[str, Any]:
        return {
            "code": code,
            "conflicts": [
                {
                    "code": r["otherCode"],
                    "label": r["otherLabel"],
                    "conflict": r["conflict"],
                    "scope": r["scope"],
                    "evidence": r["status"],
                    "reason": r["reason"],
                }
                for r in self.query("conflicts-with", {"code": code})
            ],
        }

    # ------------------------------------------------------------------ anatomy

    def vertebrae(self) -> list[dict[str, Any]]:
        return [
            {
                "level": r["vertebra"],
                "label": r["label"],
                "region": r["region"],
                "sequence": r["sequence"],
                "transitional": r["transitional"],
            }
            for r in self.query("vertebrae")
        ]

    def vertebra(self, level: str) -> dict[str, Any]:
        name = self.validator.vertebrae.get(level.strip().upper()) if level.isascii() else None
        if name is None:
            raise UnknownVertebraError(level, [v["level"] for v in self.vertebrae()])
        return self._cached(("vertebra", name), lambda: self._vertebra(name))

    def _in_spine_order(self, levels: list[str]) -> list[str]:
        """Levels from top to bottom (GROUP_CONCAT keeps no order)."""
        order = {v["level"]: v["sequence"] for v in self.vertebrae()}
        return sorted(levels, key=lambda level: (order.get(level, 0), level))

    def _vertebra(self, name: str) -> dict[str, Any]:
        rows = self.query("vertebra", {"vertebra": name})
        first = rows[0]
        codes: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            if r.get("procedure"):
                codes.setdefault(r["procedure"], []).append({"code": r["code"], "role": r["role"], "evidence": r["status"]})
        return {
            "level": name,
            "label": first["label"],
            "region": first["region"],
            "sequence": first["sequence"],
            "transitional": first["transitional"],
            "billing_regions": sorted(_split(first.get("billingRegions"))),
            "above": self._in_spine_order(_split(first.get("above"))),
            "below": self._in_spine_order(_split(first.get("below"))),
            "codes": codes,
        }

    # ------------------------------------------------------------------ claims, SPARQL, ontology

    def validate(self, claim: Any, max_lines: int | None = None) -> dict[str, Any]:
        """The verdict for one claim; InputError (naming the field) for unusable input or more than
        ``max_lines`` lines. CPU-bound: an async caller runs it in a worker thread."""
        return self.validator.validate(claim, max_lines=max_lines)

    def validate_many(self, claims: list[Any], max_lines: int | None = None) -> list[dict[str, Any]]:
        """One verdict per claim; an unusable claim (or one of more than ``max_lines`` lines) gets an
        error object with its index, and the others are still checked."""
        return list(self.iter_validate(claims, max_lines))

    def iter_validate(self, claims: Iterable[Any], max_lines: int | None = None) -> Iterator[dict[str, Any]]:
        """validate_many, one result at a time (a caller can write each before the next is computed)."""
        validate = self.validator.validate
        for i, claim in enumerate(claims):
            try:
                yield validate(claim, max_lines=max_lines)
            except InputError as exc:
                yield {"index": i, "error": {"field": exc.field, "message": exc.detail}}

    def sparql_pool(self, config: SparqlPoolConfig | None = None) -> SparqlPool:
        """The SPARQL worker pool, started on first use (``config`` counts only then); quick to call."""
        if self._pool is None:
            with self._lock:
                if self._pool is None and self.graph.build is not None:
                    config = config or SparqlPoolConfig(workers=self._sparql_workers)
                    self._pool = SparqlPool(self.graph.build.asserted_path, self.graph.build.inferred_path, config=config)
        if self._pool is None:
            raise InputError("query", "SPARQL needs a graph loaded from a build")
        return self._pool

    def sparql(self, query: str, accept: str | None, timeout: float, max_rows: int) -> SparqlResult:
        return self.sparql_pool().run(SparqlRequest(query, accept, timeout=timeout, max_rows=max_rows))

    def sparql_isolation(self) -> dict[str, Any] | None:
        """How SPARQL workers are confined (network filter, memory limit), once the pool has started."""
        return None if self._pool is None else self._pool.isolation()

    def ontology(self, fmt: str) -> bytes:
        return self._cached(("ontology", fmt), lambda: export_graph(self.graph, fmt))

    def health(self) -> dict[str, Any]:
        build = self.graph.build
        return {
            "status": "ok",
            "build": build.key if build else None,
            "triples": {
                "asserted": build.asserted_triples if build else None,
                "inferred": build.inferred_triples if build else None,
            },
            "rules": len(self.validator.rules),
            "codes": len(self.codes_known),
            "sparql_isolation": self.sparql_isolation(),
        }

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


def _split(value: Any, sep: str = " | ") -> list[str]:
    return [v for v in str(value).split(sep) if v] if value else []


def _day(value: Any) -> str | None:
    return str(value)[:10] if value else None


def _money(value: Any) -> str | None:
    return None if value is None else f"{Decimal(str(value)):.2f}"


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if isinstance(v, Decimal):
            v = float(v) if v != v.to_integral_value() or "." in str(v) else int(v)
        elif hasattr(v, "isoformat"):
            v = v.isoformat()
        out[k] = v
    return out


def _fee_row(r: dict[str, Any]) -> dict[str, Any]:
    def indicator(code_key: str, meaning_key: str) -> dict[str, Any]:
        return {"value": r[code_key], "meaning": r[meaning_key]}

    priced = r["status"] != "C"
    return {
        "year": r["year"],
        "component": r["component"],
        "release": r["release"],
        "source": r["sourceId"],
        "status": indicator("status", "statusMeaning"),
        "global_days": indicator("globalDays", "globalMeaning"),
        "rvu": {
            "work": r["workRvu"],
            "pe_non_facility": r["nonFacilityPeRvu"],
            "pe_facility": r["facilityPeRvu"],
            "malpractice": r["malpracticeRvu"],
            "total_non_facility": r["nonFacilityTotalRvu"],
            "total_facility": r["facilityTotalRvu"],
        },
        "non_facility_not_applicable": r["nonFacilityNotApplicable"],
        "conversion_factor": r["conversionFactor"],
        "national_amount": {
            "non_facility": _money(r.get("nonFacilityAmount")) if priced else None,
            "facility": _money(r.get("facilityAmount")) if priced else None,
            "note": None if priced else "contractor-priced (status C): the MAC sets the amount",
        },
        "indicators": {
            "multiple_procedure": indicator("multipleProcedure", "multipleProcedureMeaning"),
            "bilateral": indicator("bilateral", "bilateralMeaning"),
            "assistant": indicator("assistant", "assistantMeaning"),
            "co_surgeons": indicator("coSurgeons", "coSurgeonsMeaning"),
            "team": indicator("team", "teamMeaning"),
            "pc_tc": indicator("pcTc", "pcTcMeaning"),
        },
    }
