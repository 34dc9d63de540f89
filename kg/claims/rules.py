"""A claim rule is one file, queries/rules/<id>.rq: its #+ header says what the rule is and how to
word a finding; its SELECT returns the rule's table from the reasoned graph. The ``check`` key
names one of a handful of generic checker kinds (kg/claims/checkers.py) that apply such tables to a
claim, in the way CMS's own edits are tables of pairs, limits and primaries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from spinekg.kg.claims.model import Finding, Repair
from spinekg.kg.errors import SpinekgError
from spinekg.kg.queries import NamedQuery

SEVERITIES = ("error", "warning", "info")
UNVERIFIED_NOTE = " This rests on a source the project could not verify, so it is a warning, not an error."


class _Vars(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        raise KeyError(key)


@dataclass
class Rule:
    id: str
    check: str
    severity: str
    message: str
    fix: str
    sources: tuple[str, ...]
    summary: str
    description: str
    effective: int | None
    repair: str | None = None
    supersedes: tuple[str, ...] = ()
    priority: int = 50
    query: NamedQuery | None = field(default=None, repr=False)

    @classmethod
    def from_query(cls, query: NamedQuery) -> Rule:
        h = query.header
        severity = str(h.get("severity", ""))
        if severity not in SEVERITIES:
            raise SpinekgError(f"rule {query.name}: severity must be one of {', '.join(SEVERITIES)}")
        sources = h.get("source") or []
        if not isinstance(sources, list):
            raise SpinekgError(f"rule {query.name}: source must be a list of source ids (e.g. [S5, S11])")
        return cls(
            id=query.name,
            check=str(h["check"]),
            severity=severity,
            message=str(h["message"]),
            fix=str(h["fix"]),
            sources=tuple(str(s) for s in sources),
            summary=str(h.get("summary", "")),
            description=str(h.get("description", "")).strip(),
            effective=h.get("effective"),
            repair=h.get("repair"),
            supersedes=tuple(h.get("supersedes") or ()),
            priority=int(h.get("priority", 50)),
            query=query,
        )

    def finding(
        self,
        lines: tuple[int, ...],
        variables: dict[str, Any],
        status: str = "verified",
        sources: tuple[str, ...] = (),
        repairs: tuple[Repair, ...] = (),
    ) -> Finding:
        """Word a finding from the header's templates; an unverified basis turns an error into a warning."""
        values = _Vars(variables)
        message = self.message.format_map(values)
        severity = self.severity
        if status == "unverified" and severity == "error":
            severity = "warning"
            message += UNVERIFIED_NOTE
        return Finding(
            rule=self.id,
            severity=severity,
            lines=lines,
            message=message,
            fix=self.fix.format_map(values),
            sources=tuple(dict.fromkeys(self.sources + sources)),
            status=status,
            repairs=repairs if severity == "error" else (),
            priority=self.priority,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "check": self.check,
            "severity": self.severity,
            "summary": self.summary,
            "description": self.description,
            "message": self.message,
            "fix": self.fix,
            "sources": list(self.sources),
            "effective": self.effective,
        }
