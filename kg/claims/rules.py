"""A claim rule is one file, queries/rules/<id>.rq: its #+ header says what the rule is, which kind
applies it (kg/claims/kinds.py), how to word a finding in each case the kind distinguishes and which
repair to propose; its SELECT returns the rule's table from the reasoned graph.

The header has a schema: an unknown key, a template variable the kind does not provide, a case it
does not word, a repair or an option it does not know, or a column the kind does not read is an error
when the rules are loaded, naming the file."""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from spinekg.kg.claims.model import Finding, Repair
from spinekg.kg.errors import SpinekgError
from spinekg.kg.queries import NamedQuery

if TYPE_CHECKING:
    from spinekg.kg.claims.kinds import Kind

SEVERITIES = ("error", "warning", "info")
UNVERIFIED_NOTE = " This rests on a source the project could not verify, so it is a warning, not an error."
# Keys every rule header may have; a kind's options (such as a bundle's scope) are allowed beside them.
RULE_KEYS = (
    "summary",
    "description",
    "kind",
    "rule-kind",
    "severity",
    "message",
    "fix",
    "source",
    "effective",
    "repair",
    "supersedes",
    "priority",
    "tags",
)
REQUIRED_KEYS = ("summary", "rule-kind", "severity", "message", "fix", "source")


@dataclass
class Rule:
    id: str
    kind: str
    severity: str
    message: dict[str, str]  # case -> template
    fix: dict[str, str]
    sources: tuple[str, ...]
    summary: str
    description: str
    effective: int | None
    repair: str | None = None
    supersedes: tuple[str, ...] = ()
    priority: int = 50
    options: dict[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    query: NamedQuery | None = field(default=None, repr=False)

    @classmethod
    def from_query(cls, query: NamedQuery, kinds: Mapping[str, type[Kind]]) -> Rule:
        """Read and check a rule file's header against the kind it names."""
        h = query.header
        where = f"rule {query.name} ({query.path.name})"
        missing = [k for k in REQUIRED_KEYS if k not in h]
        if missing:
            raise SpinekgError(f"{where}: the header needs {', '.join(missing)}")
        kind = kinds.get(str(h["rule-kind"]))
        if kind is None:
            raise SpinekgError(f"{where}: unknown rule-kind {h['rule-kind']!r}; known: {', '.join(kinds)}")
        unknown = [k for k in h if k not in RULE_KEYS and k not in kind.options and k != "params"]
        if unknown or "params" in h:
            allowed = ", ".join((*RULE_KEYS, *kind.options))
            raise SpinekgError(f"{where}: unknown header key {(unknown or ['params'])[0]!r}; a {kind.name} rule allows {allowed}")
        severity = str(h["severity"])
        if severity not in SEVERITIES:
            raise SpinekgError(f"{where}: severity must be one of {', '.join(SEVERITIES)}")
        sources = h["source"]
        if not isinstance(sources, list):
            raise SpinekgError(f"{where}: source must be a list of source ids (e.g. [S5, S11])")
        if h.get("kind", "rule") != "rule":
            raise SpinekgError(f"{where}: kind must be rule in queries/rules/, not {h['kind']!r}")
        for key in ("supersedes", "tags"):
            if key in h and not (isinstance(h[key], list) and all(isinstance(v, str) for v in h[key])):
                raise SpinekgError(
                    f"{where}: {key} is a list of names, e.g. [{'units-exceed-limit' if key == 'supersedes' else 'pairing'}]"
                )
        for key in ("effective", "priority"):
            if key in h and (isinstance(h[key], bool) or not isinstance(h[key], int)):
                raise SpinekgError(f"{where}: {key} is a whole number{' (a year)' if key == 'effective' else ''}, not {h[key]!r}")
        for key in ("summary", "description"):
            if key in h and not isinstance(h[key], str):
                raise SpinekgError(f"{where}: {key} is text")
        repair = h.get("repair")
        if repair is not None and severity != "error":
            raise SpinekgError(
                f"{where}: only an error proposes a repair (the suggestion corrects errors); this rule is a {severity}"
            )
        if repair is not None and repair not in kind.repairs:
            raise SpinekgError(
                f"{where}: a {kind.name} rule cannot propose repair {repair!r}; it can: {', '.join(kind.repairs) or 'none'}"
            )
        options = {}
        for name, allowed_values in kind.options.items():
            value = str(h.get(name, allowed_values[0]))
            if value not in allowed_values:
                raise SpinekgError(f"{where}: {name} must be one of {', '.join(allowed_values)}, not {value!r}")
            options[name] = value
        return cls(
            id=query.name,
            kind=kind.name,
            severity=severity,
            message=_templates(h["message"], kind, where, "message"),
            fix=_templates(h["fix"], kind, where, "fix"),
            sources=tuple(str(s) for s in sources),
            summary=str(h["summary"]),
            description=str(h.get("description", "")).strip(),
            effective=h.get("effective"),
            repair=repair,
            supersedes=tuple(str(s) for s in h.get("supersedes") or ()),
            priority=int(h.get("priority", 50)),
            options=options,
            tags=tuple(str(t) for t in h.get("tags") or ()),
            query=query,
        )

    def check_columns(self, columns: list[str], kind: type[Kind]) -> None:
        """The rule's SELECT must return the kind's columns, and no column the kind does not read."""
        where = f"rule {self.id}"
        missing = [c for c in kind.columns if c not in columns]
        if missing:
            raise SpinekgError(
                f"{where}: a {kind.name} table needs the columns {', '.join(kind.columns)}; missing {', '.join(missing)}"
            )
        if not self.sources and "source" not in columns and self.severity == "error":
            # a note about the claim or spinekg's own scope (an assumed field, an unknown code) needs
            # no source; an error does
            raise SpinekgError(f"{where}: the header names no source and the table has no source column")
        extra = [c for c in columns if c not in kind.columns and c not in kind.optional]
        if extra:
            known = ", ".join((*kind.columns, *kind.optional))
            raise SpinekgError(f"{where}: a {kind.name} table has no column {extra[0]!r}; its columns: {known}")

    def finding(
        self,
        lines: tuple[int, ...],
        variables: dict[str, Any] | Callable[[], dict[str, Any]],
        status: str = "verified",
        sources: tuple[str, ...] = (),
        repairs: tuple[Repair, ...] = (),
        case: str = "default",
    ) -> Finding:
        """A finding of this rule; an unverified basis turns an error into a warning. It is worded from
        the header's templates when its message is first read (kg/claims/model.py)."""
        severity = self.severity
        if status == "unverified" and severity == "error":
            severity = "warning"
        return Finding(
            rule=self.id,
            severity=severity,
            lines=lines,
            variables=variables,
            case=case,
            wording=self,
            sources=tuple(dict.fromkeys(self.sources + sources)) if sources else self.sources,
            status=status,
            repairs=repairs if severity == "error" else (),
            priority=self.priority,
        )

    def words(self, variables: dict[str, Any], case: str, downgraded: bool) -> tuple[str, str]:
        """The message and fix of a finding: the case's templates filled in with its variables."""
        message = self.message[case].format_map(variables)
        if downgraded and self.severity == "error":
            message += UNVERIFIED_NOTE
        return message, self.fix[case].format_map(variables)

    def describe(self) -> dict[str, Any]:
        one = len(set(self.message.values())) == 1 and len(set(self.fix.values())) == 1
        return {
            "id": self.id,
            "kind": self.kind,
            "severity": self.severity,
            "summary": self.summary,
            "description": self.description,
            "message": next(iter(self.message.values())) if one else self.message,
            "fix": next(iter(self.fix.values())) if one else self.fix,
            "repair": self.repair,
            "options": self.options,
            "supersedes": list(self.supersedes),
            "priority": self.priority,
            "tags": list(self.tags),
            "sources": list(self.sources),
            "effective": self.effective,
        }


def _templates(value: Any, kind: type[Kind], where: str, key: str) -> dict[str, str]:
    """A template for every case of the kind: one string for all of them, or a mapping case -> string.
    Each template may use only the variables the kind provides."""
    if isinstance(value, str):
        templates = dict.fromkeys(kind.cases, value)
    elif isinstance(value, dict):
        templates = {str(k): str(v) for k, v in value.items()}
        unknown = [c for c in templates if c not in kind.cases]
        missing = [c for c in kind.cases if c not in templates]
        if unknown or missing:
            raise SpinekgError(
                f"{where}: {key} words the cases {', '.join(kind.cases)} of a {kind.name} rule"
                + (f"; unknown case {unknown[0]!r}" if unknown else f"; missing {', '.join(missing)}")
            )
    else:
        raise SpinekgError(f"{where}: {key} is a template string or a mapping of case to template")
    for case, text in templates.items():
        try:
            names = [name for _, name, spec, _ in string.Formatter().parse(text) if name is not None]
        except ValueError as exc:
            raise SpinekgError(f"{where}: {key} ({case}) is not a valid template: {exc}") from None
        for name in names:
            if name not in kind.variables:
                raise SpinekgError(
                    f"{where}: {key} ({case}) uses {{{name}}}; a {kind.name} rule provides {', '.join(kind.variables)}"
                )
    return templates
