"""Named SPARQL queries: discovery, #+ headers, and parameters bound as RDF terms.

Every ``queries/**/*.rq`` file is one operation (grlc style). Its header is YAML on lines that
start with ``#+``; ``params`` declares each parameter's type, so that a request value becomes an
RDF term (never text spliced into the query)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pyoxigraph as ox
import yaml

from spinekg.kg import paths
from spinekg.kg.errors import InputError, SpinekgError
from spinekg.kg.graph import KnowledgeGraph, SelectResult
from spinekg.kg.namespaces import PREFIXES

KINDS = ("api", "rule", "check")
MAX_PARAM_LENGTH = 200
# The header keys of each kind of query: a misspelt key is an error, not a silently ignored line. A
# rule's header is checked against its rule kind by kg/claims/rules.py, which knows the kinds' options.
HEADER_KEYS: dict[str, tuple[str, ...]] = {
    "api": ("summary", "description", "kind", "source", "params", "tags"),
    "check": ("summary", "description", "kind", "tags"),
}
REQUIRED_HEADER_KEYS: dict[str, tuple[str, ...]] = {
    "api": ("summary", "description", "kind"),
    "check": ("summary", "description", "kind"),
    "rule": ("summary", "description", "kind", "rule-kind", "severity", "message", "fix", "source"),
}
PARAM_KEYS = ("type", "description", "prefix", "pattern", "example", "required")
_FOLDER_KIND = {"api": "api", "rules": "rule", "checks": "check"}


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    description: str = ""
    prefix: str | None = None
    pattern: str | None = None
    example: str | None = None
    required: bool = True

    def bind(self, raw: str) -> ox.NamedNode | ox.Literal:
        """Turn a request value into an RDF term, or raise InputError naming the parameter."""
        where = f"param {self.name}"
        if len(raw) > MAX_PARAM_LENGTH:  # a code, a level or a family name: short; a long value is not one
            raise InputError(where, f"a parameter value has at most {MAX_PARAM_LENGTH} characters; this one has {len(raw)}")
        value = raw.strip()
        if self.pattern and not re.fullmatch(self.pattern, value):
            raise InputError(where, f"{raw!r} does not look like {self.description or 'a ' + self.type} (pattern {self.pattern})")
        if self.type == "literal":
            return ox.Literal(value)
        if self.type == "integer":
            if not re.fullmatch(r"[+-]?\d+", value):
                raise InputError(where, f"{raw!r} is not an integer")
            return ox.Literal(value, datatype=ox.NamedNode(PREFIXES["xsd"] + "integer"))
        if self.type == "icd10cm":  # a code as people write it (dot optional, any case) -> its IRI, icd10cm:M8008XA
            from spinekg.kg.icd10.codes import iri as icd10cm_iri
            from spinekg.kg.icd10.codes import is_shaped

            if not is_shaped(value):
                raise InputError(where, f"{raw!r} is not shaped like an ICD-10-CM code (e.g. M80.08XA or M8008XA)")
            return ox.NamedNode(icd10cm_iri(value))
        if self.type == "iri":
            if self.prefix:
                if not re.fullmatch(r"[A-Za-z0-9_.\-]+", value):
                    raise InputError(where, f"{raw!r} is not a valid local name")
                return ox.NamedNode(PREFIXES[self.prefix] + value)
            try:
                return ox.NamedNode(value)
            except ValueError as exc:
                raise InputError(where, f"{raw!r} is not an IRI") from exc
        raise SpinekgError(f"parameter {self.name} has unknown type {self.type!r}")


@dataclass(frozen=True)
class NamedQuery:
    name: str
    kind: str
    path: Path
    header: dict[str, Any]
    text: str
    params: tuple[Param, ...] = field(default=())

    @property
    def summary(self) -> str:
        return str(self.header.get("summary", ""))

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "summary": self.summary,
            "description": str(self.header.get("description", "")).strip(),
            "params": [
                {
                    "name": p.name,
                    "type": p.type,
                    "description": p.description,
                    "example": p.example,
                    "required": p.required,
                }
                for p in self.params
            ],
            "source": self.header.get("source"),
        }

    def bindings(self, values: Mapping[str, str]) -> dict[str, ox.NamedNode | ox.Literal]:
        known = {p.name for p in self.params}
        unknown = sorted(set(values) - known)
        if unknown:
            allowed = ", ".join(sorted(known)) or "none"
            raise InputError(f"param {unknown[0]}", f"query {self.name} has no such parameter (parameters: {allowed})")
        bound: dict[str, ox.NamedNode | ox.Literal] = {}
        for p in self.params:
            if p.name in values:
                bound[p.name] = p.bind(values[p.name])
            elif p.required:
                example = f", for example {p.name}={p.example}" if p.example else ""
                raise InputError(f"param {p.name}", f"query {self.name} needs this parameter{example}")
        return bound

    def run(self, graph: KnowledgeGraph, values: Mapping[str, str] | None = None) -> SelectResult:
        bound = self.bindings(values or {})
        # without parameters the answer is fixed for a build: the graph may keep it (KnowledgeGraph.select_fixed)
        return graph.select(self.text, bound) if bound else graph.select_fixed(self.text)


def parse_header(text: str, where: str = "query") -> dict[str, Any]:
    lines = [ln[2:].removeprefix(" ") for ln in text.splitlines() if ln.startswith("#+")]
    if not lines:
        return {}
    try:
        # libyaml's loader when PyYAML has it: the headers of every query are read at each start-up (0.2 s in Python)
        data = yaml.load("\n".join(lines), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise SpinekgError(f"{where}: the #+ header is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise SpinekgError(f"{where}: the #+ header must be a YAML mapping")
    return data


def load_query(path: Path, kind: str | None = None) -> NamedQuery:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpinekgError(f"cannot read query file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise SpinekgError(f"query file {path} is not UTF-8 text (byte {exc.start})") from None
    header = parse_header(text, path.name)
    kind = kind or str(header.get("kind", "api"))
    if kind not in KINDS:
        raise SpinekgError(f"{path.name}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
    allowed = HEADER_KEYS.get(kind)
    unknown = [str(k) for k in header if allowed is not None and k not in allowed]
    if unknown:
        article = "an" if kind == "api" else "a"
        known = ", ".join(allowed or ())
        raise SpinekgError(f"{path.name}: unknown header key {unknown[0]!r}; {article} {kind} query allows {known}")
    params_spec = header.get("params") or {}
    if not isinstance(params_spec, dict):
        raise SpinekgError(f"{path.name}: params is a mapping of parameter name to its spec")
    for name, spec in params_spec.items():
        bad = [str(k) for k in (spec or {}) if k not in PARAM_KEYS] if isinstance(spec, dict) else ["(not a mapping)"]
        if bad:
            raise SpinekgError(f"{path.name}: param {name}: unknown key {bad[0]!r}; a param allows {', '.join(PARAM_KEYS)}")
    params = tuple(
        Param(
            name=name,
            type=str(spec.get("type", "literal")),
            description=str(spec.get("description", "")),
            prefix=spec.get("prefix"),
            pattern=spec.get("pattern"),
            example=None if spec.get("example") is None else str(spec.get("example")),
            required=bool(spec.get("required", True)),
        )
        for name, spec in params_spec.items()
    )
    return NamedQuery(path.stem, kind, path, header, text, params)


@cache
def _discover(root: Path) -> tuple[NamedQuery, ...]:
    found = []
    for folder, kind in _FOLDER_KIND.items():
        for path in sorted((root / folder).glob("*.rq")):
            found.append(load_query(path, kind))
    return tuple(found)


def discover(kind: str | None = None) -> list[NamedQuery]:
    """Every named query on disk (by folder: api/, rules/, checks/)."""
    queries = _discover(paths.queries_dir())
    return [q for q in queries if kind is None or q.kind == kind]


class UnknownQueryError(InputError):
    """No named query of that name."""


def get_query(name_or_path: str, kinds: tuple[str, ...] = ("api",)) -> NamedQuery:
    """A named query by name (api/ by default) or by the path of a .rq file."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".rq":
        if not candidate.is_file():
            raise InputError("query", f"no query file {name_or_path}")
        return load_query(candidate)
    for q in discover():
        if q.kind in kinds and q.name == name_or_path:
            return q
    names = ", ".join(q.name for q in discover() if q.kind in kinds)
    raise UnknownQueryError("query", f"no named query {name_or_path!r}; known: {names}")
