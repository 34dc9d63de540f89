"""Quality checks: every queries/checks/*-violation.rq must return zero rows on the built graph,
and the ontology must stay in the OWL 2 DL profile (checked with the OWL API, as Protégé loads it)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import Any

from spinekg.kg import paths
from spinekg.kg.graph import KnowledgeGraph
from spinekg.kg.queries import discover
from spinekg.kg.reason import hermit_jar, java_executable


@dataclass
class CheckOutcome:
    name: str
    summary: str
    rows: list[dict[str, Any]]


def run_checks(graph: KnowledgeGraph) -> list[CheckOutcome]:
    return [CheckOutcome(q.name, q.summary, q.run(graph).values()) for q in discover("check") if q.name.endswith("-violation")]


def profile_check(profile: str = "DL") -> tuple[bool, str]:
    """Load ontology/spinekg-full.ttl (everything) with imports resolved through the catalog; report profile violations."""
    helper = paths.java_dir() / "ProfileCheck.java"
    cmd = [
        java_executable(),
        "-cp",
        str(hermit_jar()),
        str(helper),
        str(paths.full_ontology()),
        profile,
        str(paths.catalog_file()),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    report = proc.stdout.strip() or (proc.stderr.strip().splitlines() or ["no output from the OWL API"])[-1]
    return proc.returncode == 0, report
