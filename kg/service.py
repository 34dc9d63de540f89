"""Everything a front end (the HTTP API, a notebook) asks of the knowledge graph, in one object that is
built once per process: the fact families of kg/facts (cached: the graph is read-only), the named
queries, claim validation, read-only SPARQL and the merged ontology. The command line asks kg/facts
the same questions, so both answer with the same JSON."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from spinekg.kg.claims import ClaimValidator
from spinekg.kg.coding import Coder
from spinekg.kg.errors import InputError
from spinekg.kg.export import export_graph
from spinekg.kg.facts import Facts, codes, coverage, diagnoses, levels, ncci, page, relations
from spinekg.kg.graph import KnowledgeGraph
from spinekg.kg.queries import NamedQuery
from spinekg.kg.sparql import SparqlPool, SparqlPoolConfig, SparqlRequest, SparqlResult


class KnowledgeService:
    def __init__(self, graph: KnowledgeGraph, sparql_workers: int = 2, cache_size: int = 4096) -> None:
        self.graph = graph
        self.facts = Facts(graph, cache_size=cache_size)
        self.validator = ClaimValidator(graph)
        self._lock = threading.Lock()
        self._pool: SparqlPool | None = None
        self._coder: Coder | None = None
        self._sparql_workers = sparql_workers

    # ------------------------------------------------------------------ named queries

    def named_queries(self) -> list[NamedQuery]:
        return self.facts.named_queries()

    def named_query(self, name: str) -> NamedQuery:
        return self.facts.named_query(name)

    def query_table(self, name: str, params: Mapping[str, str] | None = None) -> tuple[list[str], list[dict[str, Any]]]:
        """Columns and rows of a named query; results are cached per (name, parameters)."""
        return self.facts.table(name, params)

    # ------------------------------------------------------------------ codes and levels (kg/facts)

    def codes(
        self, family: str | None = None, kind: str | None = None, region: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        return codes.code_list(self.facts, family, kind, region, status)

    def code(self, code: str) -> dict[str, Any]:
        return page.code_page(self.facts, code)

    def pairs(self, code: str) -> dict[str, Any]:
        return relations.relation_page(self.facts, code, "pairs")

    def bundles(self, code: str) -> dict[str, Any]:
        return relations.relation_page(self.facts, code, "bundles")

    def conflicts(self, code: str) -> dict[str, Any]:
        return relations.relation_page(self.facts, code, "conflicts")

    def coverage(self, code: str, state: str | None = None, on: str | None = None) -> dict[str, Any]:
        """The code's LCDs; for a state, its contractor's and the diagnoses that support the code (kg/facts/coverage.py)."""
        return coverage.code_coverage(self.facts, code, state, coverage.parse_day(on))

    def diagnosis(self, code: str, on: str | None = None) -> dict[str, Any]:
        """The page of an ICD-10-CM code (kg/facts/diagnoses.py), as of the release in force on ``on``."""
        return diagnoses.diagnosis_page(self.facts, code, diagnoses.parse_on(on))

    def vertebrae(self) -> list[dict[str, Any]]:
        return levels.vertebrae(self.facts)

    def vertebra(self, level: str) -> dict[str, Any]:
        return levels.vertebra(self.facts, level)

    # ------------------------------------------------------------------ claims, SPARQL, ontology

    def ncci_edits(self, code: str, on: str | None, setting: str, other: str | None) -> dict[str, Any]:
        family = ncci.family_ptp(self.facts)
        return ncci.code_edits(self.validator.ncci_store(), code, ncci.parse_on(on), setting, other, family)

    def ncci_mue(self, code: str, on: str | None, service_type: str) -> dict[str, Any]:
        return ncci.code_mue(self.validator.ncci_store(), code, ncci.parse_on(on), service_type)

    def ncci_primaries(self, code: str, on: str | None) -> dict[str, Any]:
        return ncci.addon_primaries(self.validator.ncci_store(), code, ncci.parse_on(on))

    def rules(self) -> list[dict[str, Any]]:
        """The claim rules loaded (packaged and the site's own), with their sources."""
        return self.validator.describe_rules()

    def rule_kinds(self) -> list[dict[str, Any]]:
        """The rule kinds, each with the rules written in it."""
        from spinekg.kg.claims.engine import describe_kinds

        return [k | {"rules": [r.id for r in self.validator.rules if r.kind == k["kind"]]} for k in describe_kinds()]

    def validate(self, claim: Any, max_lines: int | None = None) -> dict[str, Any]:
        """The verdict for one claim; InputError (naming the field) for unusable input or more than
        ``max_lines`` lines. CPU-bound: an async caller runs it in a worker thread."""
        return self.validator.validate(claim, max_lines=max_lines)

    def coder(self) -> Coder:
        """The coding engine of spinekg code (kg/coding), built on first use with this service's validator."""
        if self._coder is None:
            with self._lock:
                if self._coder is None:
                    self._coder = Coder(self.graph, self.validator)
        return self._coder

    def code_record(self, record: Any) -> dict[str, Any]:
        """Claim lines, explanations and documentation gaps for a structured procedure record (parsed JSON);
        InputError naming the field for unusable input. CPU-bound: run it in a worker thread."""
        return self.coder().code_json(record)

    def code_note(self, text: Any, fields: dict[str, Any] | None = None) -> dict[str, Any]:
        """The same for an operative note; ``fields`` are record fields given beside it (date_of_service, state, ...)."""
        return self.coder().code_note(text, fields)

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
        return self.facts.cached(("ontology", fmt), lambda: export_graph(self.graph, fmt))

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
            "codes": len(codes.known_codes(self.facts)),
            "sparql_isolation": self.sparql_isolation(),
        }

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
