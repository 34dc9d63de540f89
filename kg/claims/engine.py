"""Claim validation: the rules of queries/rules/ compiled once from the reasoned graph, then applied to
claims without SPARQL, Turtle or a JVM on the hot path.

The work per claim is bounded and grows linearly with its size: a claim holds at most ``max_lines``
lines (kg/claims/limits.py), each checker emits at most one finding per rule and group of lines (a
line, a line and one of its levels or modifiers, or the lines that one relation between codes ties
together), never one per pair of lines, and the suggestion loop runs at most MAX_REPAIR_ROUNDS rounds
over a claim that may at most double in length."""

from __future__ import annotations

import stat
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import IO, Any, cast

import orjson

from spinekg.kg.cache import remember
from spinekg.kg.claims.coverage_kinds import COVERAGE_KINDS
from spinekg.kg.claims.diagnosis_kinds import DIAGNOSIS_KINDS
from spinekg.kg.claims.kinds import GLOSSARY, Anatomy, Context, Kind, Known, Shape, kind_names
from spinekg.kg.claims.kinds import KINDS as GRAPH_KINDS
from spinekg.kg.claims.limits import MAX_CLAIM_BYTES, MAX_CLAIM_LINES
from spinekg.kg.claims.model import Claim, Finding, Line, Repair
from spinekg.kg.claims.ncci_kinds import NCCI_KINDS
from spinekg.kg.claims.parse import CLAIM_KEYS, Places, load_json, parse_claim
from spinekg.kg.claims.rules import Rule
from spinekg.kg.errors import InputError, SpinekgError
from spinekg.kg.graph import KnowledgeGraph
from spinekg.kg.icd10.store import CodeSet, code_set
from spinekg.kg.ncci.store import NcciStore
from spinekg.kg.paths import site_rules_dir
from spinekg.kg.queries import NamedQuery, discover, get_query, load_query

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
MAX_RULE_FILE_BYTES = 256 * 1024  # a site's rule file; the packaged ones are under 4 KiB
# every rule kind: the graph's tables, then CMS's, then those of the claim's diagnoses (kg/icd10), then
# the contractors' LCDs (kg/claims/coverage_kinds.py)
KINDS: dict[str, type[Kind]] = {**GRAPH_KINDS, **NCCI_KINDS, **DIAGNOSIS_KINDS, **COVERAGE_KINDS}
DISPATCH_CACHE = 16384  # claim shapes whose relevant rules are remembered, per cache (a few MB at most)
_NONE: frozenset[str] = frozenset()
_CLAIM_FIELDS = frozenset(CLAIM_KEYS)
MAX_REPAIR_ROUNDS = 6
MAX_SUGGESTION_GROWTH = 2  # a suggested claim holds at most this many times the lines of the claim
READ_CHUNK = 64 * 1024


class LineTooLong:
    """An NDJSON line longer than the limit, skipped without being held in memory."""

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        self.size = size


def read_ndjson(stream: IO[bytes], max_bytes: int = MAX_CLAIM_BYTES) -> Iterator[bytes | LineTooLong]:
    """The lines of a binary stream, each read with a limit: a line longer than ``max_bytes`` comes out
    as a LineTooLong (its bytes are read and dropped in chunks), so memory stays bounded however long
    a line is."""
    readline = stream.readline
    while True:
        line = readline(max_bytes + 1)
        if not line:
            return
        if len(line) <= max_bytes or line.endswith(b"\n"):
            yield line
            continue
        size = len(line)
        while not line.endswith(b"\n"):
            line = readline(READ_CHUNK)
            if not line:
                break
            size += len(line)
        yield LineTooLong(size)


class ClaimValidator:
    """Compiled rules plus the lookup tables the claim parser needs (vertebra spellings)."""

    def __init__(
        self,
        graph: KnowledgeGraph,
        max_lines: int = MAX_CLAIM_LINES,
        max_bytes: int = MAX_CLAIM_BYTES,
        rule_files: Iterable[NamedQuery] | None = None,
    ) -> None:
        """``rule_files`` default to the packaged rules (queries/rules/) plus the site's own
        ($SPINEKG_RULES_DIR)."""
        self.max_lines = max_lines  # the default for validate(); a caller may pass another per call
        self.max_bytes = max_bytes  # the longest claim JSON (a file, or one NDJSON line) read
        self.anatomy = Anatomy()
        self.vertebrae: dict[str, str] = {}
        for row in get_query("vertebrae").run(graph).values():
            name = str(row["vertebra"])
            self.anatomy.index[name] = int(row["sequence"])
            self.anatomy.region[name] = str(row["region"])
            self.vertebrae[name.upper()] = name
            for alt in filter(None, str(row.get("altLabels") or "").split("|")):
                self.vertebrae[alt.strip().upper()] = name
        self.sources = {
            str(r["sourceId"]): {
                "id": str(r["sourceId"]),
                "title": r["title"],
                "url": r.get("url"),
                "year": r.get("year"),
                "tier": r["tier"],
            }
            for r in get_query("sources").run(graph).values()
        }
        self.statuses = {str(r["status"]) for r in get_query("evidence-statuses").run(graph).values()}
        # the states and contract numbers a claim may name, and the MAC jurisdiction each picks
        self.places = Places(
            {str(r["state"]): str(r["jurisdiction"]) for r in get_query("states").run(graph).values()},
            {str(r["contract"]): str(r["jurisdiction"]) for r in get_query("contracts").run(graph).values()},
        )
        self._ncci: NcciStore | bool | None = None  # opened when a rule reads it; False: nothing imported
        self._graph_build = graph.build
        self._icd10: CodeSet | bool | None = None  # the build's ICD-10-CM code set; False: no build
        self.rules: list[Rule] = []
        self.checkers: list[Kind] = []
        for query in rule_files if rule_files is not None else rule_queries():
            if any(r.id == query.name for r in self.rules):
                raise SpinekgError(f"rule {query.name} ({query.path}): a rule of that id is already loaded")
            rule = Rule.from_query(query, KINDS)
            kind = KINDS[rule.kind]
            unknown = [s for s in rule.sources if s not in self.sources]
            if unknown:
                raise SpinekgError(f"rule {rule.id}: unknown source ids {unknown}")
            try:
                result = query.run(graph)
            except (SyntaxError, TypeError, ValueError) as exc:  # not SPARQL, or not a SELECT
                raise SpinekgError(f"rule {rule.id} ({query.path}): its query cannot be run as a SELECT: {exc}") from None
            rule.check_columns(result.variables, kind)
            rows = result.values()
            self._check_table(rule, query, rows)
            try:
                checker = kind(rule, rows, self.anatomy, self._ncci_store() if kind.uses_ncci else None)
            except (KeyError, ValueError, TypeError) as exc:
                raise SpinekgError(f"rule {rule.id}: its table does not fit a {kind.name} rule: {exc}") from exc
            if kind.uses_icd10:
                checker.icd10 = self.icd10_codes()
            self.rules.append(rule)
            self.checkers.append(checker)
        known = {r.id for r in self.rules}
        for rule in self.rules:
            if not set(rule.supersedes) <= known:
                raise SpinekgError(f"rule {rule.id}: supersedes unknown rules {sorted(set(rule.supersedes) - known)}")
        self.supersedes = {r.id: set(r.supersedes) for r in self.rules if r.supersedes}
        self._superseded = {old for olds in self.supersedes.values() for old in olds}
        self.max_levels = len(set(self.vertebrae.values()))
        self.levels_hint = _levels_hint(self.anatomy)
        self._source_cache: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        self._dated_rules = [c for c in self.checkers if c.by_day]
        self._undated_rules = [c for c in self.checkers if not c.by_day]
        self._dated_index = _CandidateIndex(self._dated_rules)
        self._undated_index = _CandidateIndex(self._undated_rules)
        self.dates = sorted({d for checker in self._dated_rules for d in checker.dates()})
        self._undated: dict[frozenset[str], tuple[tuple[Kind, ...], tuple[Kind, ...]]] = {}  # codes -> (plain, flagged)
        self._dated: dict[tuple[frozenset[str], int], tuple[Kind, ...]] = {}

    def icd10_codes(self) -> CodeSet | None:
        """The ICD-10-CM code set of the graph's build (kg/icd10), opened once; None for a graph that
        was not loaded from a build (a test's fixture graph)."""
        if self._icd10 is None:
            build = self._graph_build
            self._icd10 = code_set(build.folder) if build is not None else False
        return self._icd10 if isinstance(self._icd10, CodeSet) else None

    def ncci_store(self) -> NcciStore | None:
        """The imported NCCI tables the rules read (None when none is imported)."""
        return self._ncci_store()

    def _ncci_store(self) -> NcciStore | None:
        """The imported NCCI tables (kg/ncci), opened once; None when none is imported."""
        if self._ncci is None:
            store = NcciStore.open()
            self._ncci = store if store.releases() else False
        return self._ncci if isinstance(self._ncci, NcciStore) else None

    def _check_table(self, rule: Rule, query: NamedQuery, rows: list[dict[str, Any]]) -> None:
        """A table's evidence statuses and source ids must be ones the graph knows: a misspelt status
        would count as verified, an unknown source would be cited as nothing."""
        where = f"rule {rule.id} ({query.path.name})"
        statuses = {str(r["status"]) for r in rows if r.get("status") is not None} - self.statuses
        if statuses:
            raise SpinekgError(f"{where}: status {sorted(statuses)[0]!r} is not one of {', '.join(sorted(self.statuses))}")
        sources = {str(r["source"]) for r in rows if r.get("source") is not None} - self.sources.keys()
        if sources:
            raise SpinekgError(f"{where}: its table cites unknown source ids {sorted(sources)[:5]}")

    def known_values(self, field: str) -> frozenset[str]:
        """The codes (``field`` "code") or modifiers ("modifier") the known-value rules accept."""
        return frozenset().union(*(c.values for c in self.checkers if isinstance(c, Known) and c.field == field))

    # ------------------------------------------------------------------ checking

    def relevant(self, ctx: Context) -> list[Kind]:
        """The rules that can fire on a claim of this shape, asked once per shape and remembered in two
        bounded caches (the shapes come from user input): the rules that depend on the date by the
        claim's codes and the period of its date between the rules' dates, the others by its codes
        alone, those among them that read the claim's flags (modifiers, lines without levels, assumed
        fields) then asked claim by claim."""
        period = bisect_right(self.dates, ctx.dos)
        dated_key = (ctx.codes, period)
        dated = self._dated.get(dated_key)
        if dated is None:
            # any day of the period stands for all of it: its first day (or the claim's, before the first date)
            shape = Shape(ctx.codes, False, False, _NONE, self.dates[period - 1] if period else ctx.dos)
            found_dated = tuple(c for c in self._dated_index.candidates(ctx.codes) if c.relevant(shape))
            dated = remember(self._dated, dated_key, found_dated, DISPATCH_CACHE)
        undated = self._undated.get(ctx.codes)
        if undated is None:
            # every flag set: the rules that read flags say per claim whether they apply (``applies``)
            shape = Shape(ctx.codes, True, True, _CLAIM_FIELDS, ctx.dos)
            found = [c for c in self._undated_index.candidates(ctx.codes) if c.relevant(shape)]
            split = (tuple(c for c in found if not c.flagged), tuple(c for c in found if c.flagged))
            undated = remember(self._undated, ctx.codes, split, DISPATCH_CACHE)
        plain, flagged = undated
        if not flagged:
            return [*dated, *plain]
        return [*dated, *plain, *(c for c in flagged if c.applies(ctx))]

    def findings(self, claim: Claim, prune: bool = True) -> list[Finding]:
        """The findings of every rule on a claim, in verdict order. ``prune`` (the default) skips the
        rules that cannot fire on the claim's shape; without it every rule runs (the tests compare both)."""
        ctx = Context(claim)
        out: list[Finding] = []
        for checker in self.relevant(ctx) if prune else self.checkers:
            checker.check(ctx, out)
        if not out:
            return out
        if self.supersedes and len(out) > 1:
            out = self._drop_superseded(out)
        out.sort(key=_finding_order)
        return out

    def _drop_superseded(self, findings: list[Finding]) -> list[Finding]:
        """A finding of a rule that supersedes another hides that rule's findings about any line it names."""
        covered = {(old, line) for f in findings for old in self.supersedes.get(f.rule, ()) for line in f.lines}
        return [f for f in findings if (f.rule, f.lines[0]) not in covered] if covered else findings

    def parse(self, obj: Any, today: date | None = None, max_lines: int | None = None) -> Claim:
        return parse_claim(
            obj, self.vertebrae, today, max_lines or self.max_lines, self.max_levels, self.levels_hint, self.places
        )

    def validate(self, obj: Any, today: date | None = None, max_lines: int | None = None) -> dict[str, Any]:
        """The verdict for one claim (a parsed JSON object); raises InputError for unusable input,
        including a claim of more than ``max_lines`` lines (default: the validator's)."""
        claim = self.parse(obj, today, max_lines)
        findings = self.findings(claim)
        valid = not any(f.severity == "error" for f in findings)
        verdict: dict[str, Any] = {}
        if claim.id is not None:
            verdict["id"] = claim.id
        verdict["valid"] = valid
        verdict["date_of_service"] = claim.date_of_service.isoformat()
        verdict["findings"] = [self._finding_json(f) for f in findings]
        verdict["suggestion"] = None if valid else self.suggest(claim, findings)
        return verdict

    def validate_json(
        self, data: bytes | str, today: date | None = None, max_lines: int | None = None, max_bytes: int | None = None
    ) -> dict[str, Any]:
        limit = max_bytes or self.max_bytes
        if len(data) > limit:
            raise _too_large(f"more than {limit} bytes of JSON", limit)
        return self.validate(load_json(data), today, max_lines)

    def validate_stream(
        self,
        lines: Iterable[bytes | LineTooLong] | IO[bytes],
        today: date | None = None,
        max_lines: int | None = None,
        max_bytes: int | None = None,
    ) -> Iterator[tuple[bytes, str]]:
        """NDJSON in, NDJSON out: one verdict per non-blank input line; a bad line (not JSON, not a
        claim, more than ``max_lines`` lines or ``max_bytes`` bytes) yields an error object (with its
        line number) and the stream goes on. A binary stream is read line by line with that byte
        limit (read_ndjson), never a whole line at once. Yields (json line, outcome) where outcome
        is "valid", "invalid" or "error"."""
        dumps, loads, JSONDecodeError = orjson.dumps, orjson.loads, orjson.JSONDecodeError
        limit = max_bytes or self.max_bytes
        if hasattr(lines, "readline"):
            lines = read_ndjson(cast(IO[bytes], lines), limit)
        for number, raw in enumerate(lines, start=1):
            try:
                if isinstance(raw, LineTooLong):
                    raise _too_large(f"the line has {raw.size} bytes", limit)
                if not raw.strip():
                    continue
                if len(raw) > limit and len(raw.rstrip(b"\r\n")) > limit:  # the line break does not count
                    raise _too_large(f"the line has {len(raw)} bytes", limit)
                try:
                    obj = loads(raw)
                except JSONDecodeError:
                    obj = load_json(raw)  # names the field, or raises InputError
                verdict = self.validate(obj, today, max_lines)
            except InputError as exc:
                yield dumps({"line": number, "error": {"field": exc.field, "message": exc.detail}}) + b"\n", "error"
                continue
            yield dumps(verdict) + b"\n", "valid" if verdict["valid"] else "invalid"

    def _finding_json(self, f: Finding) -> dict[str, Any]:
        sources = self._source_cache.get(f.sources)
        if sources is None:
            sources = [self.sources[s] for s in f.sources if s in self.sources]
            self._source_cache[f.sources] = sources
        return {
            "rule": f.rule,
            "severity": f.severity,
            "lines": list(f.lines),
            "message": f.message,
            "fix": f.fix,
            "evidence": f.status,
            "sources": sources,
        }

    # ------------------------------------------------------------------ suggestions

    def suggest(self, claim: Claim, findings: list[Finding]) -> dict[str, Any] | None:
        """The smallest corrected claim the rules' repairs lead to, re-checked until no error is
        left; None when some error has no repair (for example a choice only the note can settle), when
        MAX_REPAIR_ROUNDS rounds of repairs do not settle it, or when the claim would grow past
        MAX_SUGGESTION_GROWTH times its lines. Each round is one linear check of the repaired claim."""
        work: list[tuple[int | None, Line]] = [(ln.index, ln) for ln in claim.lines]
        changes: list[str] = []
        for rounds in range(MAX_REPAIR_ROUNDS + 1):  # at most MAX_REPAIR_ROUNDS repairs, each re-checked
            errors = [f for f in findings if f.severity == "error"]
            if not errors:
                suggestion: dict[str, Any] = {"lines": [ln.as_json() for _, ln in work], "changes": changes}
                if claim.diagnoses:  # the corrected claim keeps them, so that its lines' pointers still point
                    suggestion["diagnoses"] = list(claim.diagnoses)
                return suggestion
            if rounds == MAX_REPAIR_ROUNDS or any(not f.repairs for f in errors):
                return None
            # by priority, then line; for one line the first finding (in verdict order) that repairs it wins
            repairs = sorted(((f.priority, r.line, r) for f in errors for r in f.repairs), key=lambda t: t[:2])
            by_index = {ln.index: (origin, ln) for origin, ln in work}
            replaced: dict[int, list[tuple[int | None, Line]]] = {}
            for _, _, repair in repairs:
                if repair.line in replaced or repair.line not in by_index:
                    continue
                origin, line = by_index[repair.line]
                new, text = _apply(repair, line)
                replaced[repair.line] = [(origin, ln) for ln in new]
                changes.append(f"line {origin if origin is not None else '(new)'}: {text}")
            merged: list[tuple[int | None, Line]] = []
            for origin, ln in work:
                merged.extend(replaced.get(ln.index, [(origin, ln)]))
            work = [
                (origin, Line(i + 1, ln.code, ln.modifiers, ln.units, ln.levels, ln.diagnosis_pointers))
                for i, (origin, ln) in enumerate(merged)
            ]
            if not work or len(work) > MAX_SUGGESTION_GROWTH * len(claim.lines):
                return None
            current = Claim(
                [ln for _, ln in work],
                claim.date_of_service,
                claim.place_of_service,
                claim.id,
                claim_type=claim.claim_type,
                diagnoses=claim.diagnoses,
                state=claim.state,
                contractor=claim.contractor,
                jurisdiction=claim.jurisdiction,
            )
            errors_or_none = self._errors(current)
            if errors_or_none is None:
                return None
            findings = errors_or_none
        return None

    def _errors(self, claim: Claim) -> list[Finding] | None:
        """The errors of a repaired claim, for the next round of a suggestion: only the rules that can
        report an error run, and None comes as soon as an error has no repair (the suggestion then
        fails whatever the other rules say), unless a rule that supersedes it may still hide it."""
        ctx = Context(claim)
        out: list[Finding] = []
        for checker in self.relevant(ctx):
            if checker.rule.severity != "error":
                continue
            start = len(out)
            checker.check(ctx, out)
            for f in out[start:]:
                if f.severity == "error" and not f.repairs and f.rule not in self._superseded:
                    return None
        if self.supersedes and len(out) > 1:
            out = self._drop_superseded(out)
        out.sort(key=_finding_order)
        return [f for f in out if f.severity == "error"]

    def describe_rules(self) -> list[dict[str, Any]]:
        return [
            r.describe() | {"active": c.active, "sources": [self.sources[s] for s in r.sources]}
            for r, c in zip(self.rules, self.checkers, strict=True)
        ]


def rule_queries() -> list[NamedQuery]:
    """The packaged rules, then the site's own ($SPINEKG_RULES_DIR/*.rq, read by ``site_rule``)."""
    rules = discover("rule")
    site = site_rules_dir()
    if site is not None:
        rules += [site_rule(path) for path in sorted(site.glob("*.rq"))]
    return rules


def site_rule(path: Path) -> NamedQuery:
    """A site's rule file, read with the care due to a file that is not part of the package: a regular
    file (a FIFO or a device is refused, not read) of at most MAX_RULE_FILE_BYTES, UTF-8, and a SELECT
    query that SPARQL's grammar accepts and that never leaves the graph (SERVICE refused, as /sparql
    refuses it), so that loading the rules reaches no network and never waits on one."""
    where = f"rule file {path}"
    try:
        info = path.stat()
    except OSError as exc:
        raise SpinekgError(f"{where}: cannot read it: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise SpinekgError(f"{where}: not a regular file")
    if info.st_size > MAX_RULE_FILE_BYTES:
        raise SpinekgError(f"{where}: {info.st_size} bytes; a rule file has at most {MAX_RULE_FILE_BYTES}")
    from spinekg.kg.sparql import SparqlError, inspect_query  # only for site rules: not on every start-up

    query = load_query(path, "rule")
    try:
        shape = inspect_query(query.text)
    except SparqlError as exc:
        raise SpinekgError(f"{where}: {exc}") from None
    if shape.form != "SELECT":
        raise SpinekgError(f"{where}: a rule's query is a SELECT that returns its table, not {shape.form}")
    return query


def describe_kinds() -> list[dict[str, Any]]:
    """The rule kinds: what each checks, the table it reads, and what a rule file can say about it."""
    return [
        {
            "kind": kind.name,
            "summary": kind.summary,
            "columns": list(kind.columns),
            "optional_columns": list(kind.optional),
            "variables": list(kind.variables),
            "cases": list(kind.cases),
            "repairs": list(kind.repairs),
            "options": {name: list(values) for name, values in kind.options.items()},
            "glossary": {name: (kind.glossary | GLOSSARY)[name] for name in kind_names(kind)},
        }
        for kind in KINDS.values()
    ]


class _CandidateIndex:
    """The rules worth asking ``relevant`` about for a set of codes: those that may fire on any codes,
    and those that name one of them (a claim of codes no rule names asks a few rules, not all)."""

    def __init__(self, rules: list[Kind]) -> None:
        self.rules = rules
        self.anywhere = [i for i, rule in enumerate(rules) if rule.any_code]
        self.by_code: dict[str, list[int]] = {}
        for i, rule in enumerate(rules):
            if not rule.any_code:
                for code in rule.codes:
                    self.by_code.setdefault(code, []).append(i)

    def candidates(self, codes: frozenset[str]) -> list[Kind]:
        found = set(self.anywhere)
        for code in codes:
            found.update(self.by_code.get(code, ()))
        return [self.rules[i] for i in sorted(found)]  # in the rules' order


def _finding_order(f: Finding) -> tuple[int, tuple[int, ...], str]:
    return (SEVERITY_ORDER[f.severity], f.lines, f.rule)


def _levels_hint(anatomy: Anatomy) -> str:
    """The vertebrae by region, as the graph names them ("C1-C7, T1-T12, ..."), for error messages."""
    by_region: dict[str, list[str]] = {}
    for name in anatomy.ordered(anatomy.index):
        by_region.setdefault(anatomy.region[name], []).append(name)
    return ", ".join(names[0] if len(names) == 1 else f"{names[0]}-{names[-1]}" for names in by_region.values())


def _too_large(size: str, limit: int) -> InputError:
    return InputError("claim", f"{size}; a claim may have at most {limit} (SPINEKG_MAX_CLAIM_BYTES)")


def _describe(line: Line) -> str:
    levels = f" [{', '.join(line.levels)}]" if line.levels else ""
    mods = f"-{'-'.join(line.modifiers)}" if line.modifiers else ""
    return f"{line.code}{mods} x{line.units}{levels}"


def _apply(repair: Repair, line: Line) -> tuple[list[Line], str]:
    before = _describe(line)
    action = repair.action
    if action == "remove-line":
        return [], f"remove {before}"
    if action == "replace-code" and repair.code:
        new = Line(line.index, repair.code, line.modifiers, line.units, line.levels, line.diagnosis_pointers)
    elif action == "set-units" and repair.units:
        new = Line(line.index, line.code, line.modifiers, repair.units, repair.levels or line.levels, line.diagnosis_pointers)
    elif action == "drop-modifier":
        kept = tuple(m for m in line.modifiers if m != repair.modifier)
        new = Line(line.index, line.code, kept, line.units, line.levels, line.diagnosis_pointers)
    elif action == "add-modifier" and repair.modifier:
        new = Line(line.index, line.code, (*line.modifiers, repair.modifier), line.units, line.levels, line.diagnosis_pointers)
    elif action == "split" and repair.new_lines:
        # the parts of a split line point to the diagnoses the line pointed to
        parts = [p if p.diagnosis_pointers else replace(p, diagnosis_pointers=line.diagnosis_pointers) for p in repair.new_lines]
        return parts, f"{before} -> {' + '.join(_describe(p) for p in parts)}"
    else:
        raise SpinekgError(f"cannot apply repair {action!r}")
    return [new], f"{before} -> {_describe(new)}"


__all__ = ["ClaimValidator"]
