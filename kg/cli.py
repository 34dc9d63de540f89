"""The spinekg command line.

Exit status:
  0    success (or a valid claim)
  1    a negative answer: an invalid claim, quality checks that found violations
  2    unusable input, what was typed: bad arguments or parameters, claim JSON, a FILE that cannot
       be read, an --output that cannot be written (a folder, a missing or read-only place), a
       SPINEKG_ setting of the wrong type or range (SPINEKG_PORT=abc)
  3    the environment or the ontology: no Java, an inconsistent ontology, a build cache that
       cannot be written (SPINEKG_BUILD_DIR, SPINEKG_HOME or the user cache folder), an address
       that cannot be listened on, any other error of the system or of spinekg itself
  130  interrupted (Ctrl-C); 141 the reader of standard output went away (| head)
Errors are one line on stderr; SPINEKG_DEBUG=1 adds the traceback of an unexpected one.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from spinekg.kg.errors import InputError, SpinekgError

EXIT_OK, EXIT_NEGATIVE, EXIT_INPUT, EXIT_ENVIRONMENT = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 130, 141  # 128 + SIGINT, 128 + SIGPIPE, as a shell reports them


class UsageError(Exception):
    """argparse wants to exit; we want one line and exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _json_default(value: Any) -> Any:
    return str(value)


def render(rows: list[dict[str, Any]], columns: list[str], fmt: str) -> str:
    """Rows as json, csv or an aligned text table."""
    if fmt == "json":
        return json.dumps(rows, indent=2, default=_json_default, ensure_ascii=False)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})
        return buf.getvalue().rstrip("\n")
    if not rows:
        return "(no rows)"
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [min(60, max(len(c), *(len(row[i]) for row in cells))) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        return "  ".join((v if len(v) <= w else v[: w - 1] + "…").ljust(w) for v, w in zip(values, widths, strict=True))

    return "\n".join(text.rstrip() for text in [line(columns), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def _params(pairs: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError("--param", f"{pair!r} is not of the form name=value")
        if key.strip() in values:
            raise InputError("--param", f"{key.strip()} is given twice; give each parameter once")
        values[key.strip()] = value
    return values


def cmd_build(args: argparse.Namespace) -> int:
    from spinekg.kg.build import build_graph

    result = build_graph(force=args.force)
    print(result.summary())
    return EXIT_OK


def cmd_query(args: argparse.Namespace) -> int:
    import pyoxigraph as ox

    from spinekg.kg.graph import load_graph
    from spinekg.kg.queries import get_query

    query = get_query(args.query, kinds=QUERY_KINDS)
    if args.endpoint:
        from spinekg.kg.remote import run_remote

        columns, rows = run_remote(query, _params(args.param), args.endpoint)
        print(render(rows, columns, args.format))
        return EXIT_OK
    graph = load_graph()
    bindings = query.bindings(_params(args.param))
    try:
        result = graph.execute(query.text, bindings)
    except SyntaxError as exc:
        raise InputError("query", f"{query.path.name} does not parse: {str(exc).splitlines()[0]}") from None
    except OSError as exc:  # e.g. a SERVICE the embedded store could not reach
        raise SpinekgError(f"{query.path.name} failed: {exc}") from None
    if isinstance(result, ox.QueryBoolean):
        print(json.dumps({"boolean": bool(result)}) if args.format == "json" else str(bool(result)).lower())
    elif isinstance(result, ox.QueryTriples):
        sys.stdout.buffer.write(ox.serialize(list(result), format=ox.RdfFormat.N_TRIPLES) or b"")
    else:
        from spinekg.kg.graph import SelectResult

        variables = [v.value for v in result.variables]
        rows = [{v: sol[v] for v in variables if sol[v] is not None} for sol in result]
        table = SelectResult(variables, rows)
        print(render(table.values(), table.variables, args.format))
    return EXIT_OK


QUERY_KINDS = ("api", "rule", "check")  # `spinekg query NAME` runs any named query; the HTTP API serves api/ only


def cmd_queries(args: argparse.Namespace) -> int:
    from spinekg.kg.queries import discover

    rows = [q.describe() for q in discover() if args.kind in (None, q.kind)]
    for row in rows:
        row["params"] = ", ".join(p["name"] for p in row["params"])
    print(render(rows, ["name", "kind", "params", "summary"], args.format))
    return EXIT_OK


def cmd_code_info(args: argparse.Namespace) -> int:
    """The code's page of kg/facts: as JSON it is the body of GET /codes/{code}, as text laid out for reading."""
    from spinekg.kg.facts import Facts
    from spinekg.kg.facts.page import code_page
    from spinekg.kg.facts.text import code_page_text
    from spinekg.kg.graph import load_graph

    info = code_page(Facts(load_graph()), args.code)
    print(json.dumps(info, indent=2, ensure_ascii=False) if args.format == "json" else code_page_text(info))
    return EXIT_OK


def cmd_diagnosis(args: argparse.Namespace) -> int:
    """An ICD-10-CM code's page of kg/facts: as JSON it is the body of GET /diagnoses/{code}."""
    from spinekg.kg.facts import Facts
    from spinekg.kg.facts.diagnoses import diagnosis_page, diagnosis_text, parse_on
    from spinekg.kg.graph import load_graph

    info = diagnosis_page(Facts(load_graph()), args.code, parse_on(args.on))
    print(json.dumps(info, indent=2, ensure_ascii=False) if args.format == "json" else diagnosis_text(info))
    return EXIT_OK


def _output_path(name: str) -> Path:
    """An --output FILE checked before the work that fills it: not a folder, in a folder that exists."""
    path = Path(name)
    if path.is_dir():
        raise InputError("--output", f"{name} is a folder; name a file in it")
    if not path.parent.is_dir():
        raise InputError("--output", f"cannot write {name}: no folder {path.parent}")
    return path


def _write_output(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise InputError("--output", f"cannot write {path}: {exc.strerror or exc}") from None


def cmd_export(args: argparse.Namespace) -> int:
    from spinekg.kg.export import export_graph
    from spinekg.kg.graph import load_graph

    out = _output_path(args.output) if args.output else None
    data = export_graph(load_graph(), args.format)
    if out is not None:
        _write_output(out, data)
        print(f"wrote {len(data)} bytes to {out}", file=sys.stderr)
    else:
        _write_all(sys.stdout.buffer, data)
    return EXIT_OK


def _write_all(stream: Any, data: bytes) -> None:
    """Write all of ``data``: a pipe whose reader goes away mid-write takes a part and says so only
    in the count; the next write then raises BrokenPipeError, which run() handles."""
    view = memoryview(data)
    while view:
        written = stream.write(view)
        if not written:
            raise BrokenPipeError("standard output took nothing")
        view = view[written:]
    stream.flush()


def cmd_check(args: argparse.Namespace) -> int:
    from spinekg.kg.checks import profile_check, run_checks
    from spinekg.kg.graph import load_graph

    failures = 0
    for outcome in run_checks(load_graph()):
        status = "ok" if not outcome.rows else f"{len(outcome.rows)} violation(s)"
        print(f"{outcome.name}: {status}")
        for row in outcome.rows[:10]:
            print("    " + ", ".join(f"{k}={v}" for k, v in row.items()))
        failures += bool(outcome.rows)
    if args.profile:
        ok, report = profile_check()
        print(report)
        failures += not ok
    return EXIT_NEGATIVE if failures else EXIT_OK


def cmd_import_pfs(args: argparse.Namespace) -> int:
    from spinekg.kg.importers.pfs import pfs_to_turtle, vocabulary
    from spinekg.kg.load import load_asserted

    out = _output_path(args.output)
    text = pfs_to_turtle(Path(args.csv), args.year, args.source, vocabulary(load_asserted()))
    _write_output(out, text.encode("utf-8"))
    print(
        f"wrote {out}; list it in ontology/catalog-v001.xml and the owl:imports of spinekg.ttl if it is new",
        file=sys.stderr,
    )
    return EXIT_OK


def _positive(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    if not (text.isascii() and text.isdigit() and len(text) <= 12) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text[:20]!r} is not a whole number of at least 1")
    return int(text)


def _open_input(name: str) -> Any:
    if name == "-":
        return sys.stdin.buffer
    try:
        return open(name, "rb")  # noqa: SIM115 - closed by the caller
    except OSError as exc:
        raise InputError("FILE", f"cannot read {name}: {exc.strerror}") from exc


def cmd_validate(args: argparse.Namespace) -> int:
    from spinekg.kg.claims import ClaimValidator
    from spinekg.kg.claims.limits import claim_limits
    from spinekg.kg.graph import load_graph

    # the same limits as the HTTP API: option, else environment variable, else the kg default
    max_lines, max_bytes = claim_limits(args.max_lines, args.max_bytes)
    source = _open_input(args.file)
    try:
        if args.batch:
            validator = ClaimValidator(load_graph(), max_lines=max_lines, max_bytes=max_bytes)
            return _validate_batch(validator, source)  # each line read with the byte limit
        data = source.read(max_bytes + 1)  # one byte more than allowed is enough to refuse it
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    validator = ClaimValidator(load_graph(), max_lines=max_lines, max_bytes=max_bytes)
    verdict = validator.validate_json(data)
    print(json.dumps(verdict, indent=2, ensure_ascii=False))
    return EXIT_OK if verdict["valid"] else EXIT_NEGATIVE


def cmd_code(args: argparse.Namespace) -> int:
    """spinekg code FILE|- (a procedure record, JSON) or --note FILE|- (an operative note, text): the JSON of
    POST /coding or /coding/note. Exit 0 when lines were coded, 1 when nothing was (the reason on stderr)."""
    from spinekg.kg.claims.limits import claim_limits
    from spinekg.kg.claims.parse import load_json
    from spinekg.kg.coding import Coder
    from spinekg.kg.coding.note import MAX_NOTE_CHARS
    from spinekg.kg.graph import load_graph

    _, max_bytes = claim_limits(None, args.max_bytes)
    limit = max(max_bytes, 4 * MAX_NOTE_CHARS) if args.note else max_bytes  # a note in UTF-8: up to 4 bytes a character
    source = _open_input(args.file)
    try:
        data = source.read(limit + 1)
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    if len(data) > limit:
        what = "a note" if args.note else "a procedure record"
        raise InputError("FILE", f"more than {limit} bytes; {what} may have at most {limit}")
    fields = {k: v for k, v in (("date_of_service", args.date_of_service), ("state", args.state)) if v is not None}
    if args.note:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError("FILE", f"the note is not UTF-8 text (byte {exc.start})") from None
        result = Coder(load_graph()).code_note(text, fields)
    else:
        if fields:
            option = "--date-of-service" if args.date_of_service else "--state"
            raise InputError(option, "give it in the record; these options go with --note")
        record = load_json(data, field="record")  # not JSON: refused before the graph is loaded
        result = Coder(load_graph()).code_json(record)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    if not result["lines"]:
        sys.stdout.flush()
        return _fail(f"spinekg: {result['warnings'][0]['message']}", EXIT_NEGATIVE)
    return EXIT_OK


def _is_regular_file(stream: Any) -> bool:
    import stat

    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (OSError, AttributeError, ValueError):
        return False


def _validate_batch(validator: Any, source: Any) -> int:
    """NDJSON in, NDJSON out, streaming; progress on stderr when it is a terminal."""
    import time

    sys.stdout.flush()
    # From a file, verdicts go out through a large buffer (about a kilobyte each: a write per verdict
    # would be a system call every few claims). From a pipe or a terminal each verdict is sent as soon
    # as it is made, so that a program that writes a claim and waits for its verdict gets it.
    streaming = not _is_regular_file(source)
    out = open(sys.stdout.fileno(), "wb", buffering=8192 if streaming else 1 << 20, closefd=False)  # noqa: SIM115 - flushed below
    show = sys.stderr.isatty()
    counts = {"valid": 0, "invalid": 0, "error": 0}
    started = last = time.perf_counter()
    for line, outcome in validator.validate_stream(source):
        out.write(line)
        if streaming:
            out.flush()
        counts[outcome] += 1
        if show:
            now = time.perf_counter()
            if now - last > 0.25:
                last = now
                done = sum(counts.values())
                sys.stderr.write(
                    f"\r{done} claims, {done / (now - started):,.0f}/s, {counts['invalid']} invalid, {counts['error']} unusable"
                )
                sys.stderr.flush()
    out.flush()
    if show:
        done = sum(counts.values())
        sys.stderr.write(f"\r{done} claims: {counts['valid']} valid, {counts['invalid']} invalid, {counts['error']} unusable\n")
    if counts["error"]:
        return EXIT_INPUT
    return EXIT_NEGATIVE if counts["invalid"] else EXIT_OK


def cmd_rules(args: argparse.Namespace) -> int:
    from spinekg.kg.claims import ClaimValidator
    from spinekg.kg.graph import load_graph

    if args.kinds:
        from spinekg.kg.claims.engine import describe_kinds

        rows = describe_kinds()
        columns = ["kind", "rules", "summary"]
        validator = ClaimValidator(load_graph())
        for row in rows:
            names = [r.id for r in validator.rules if r.kind == row["kind"]]
            row["rules"] = names if args.format == "json" else ", ".join(names)
    else:
        rows = ClaimValidator(load_graph()).describe_rules()
        columns = ["id", "kind", "severity", "summary"]
    print(render(rows, columns, args.format) if args.format != "json" else json.dumps(rows, indent=2, ensure_ascii=False))
    return EXIT_OK


def cmd_import_ncci(args: argparse.Namespace) -> int:
    """Import CMS's NCCI tables into the cache: one line per table as it is put in place, warnings on stderr."""
    from spinekg.kg.ncci import ImportResult, import_ncci
    from spinekg.kg.ncci.values import parse_user_date

    effective = parse_user_date(args.effective, "--effective") if args.effective else None

    def show(result: ImportResult) -> None:
        print(result.line(), flush=True)
        for warning in result.warnings:
            print(f"warning: {result.kind} {result.release.id}: {warning}", file=sys.stderr)

    import_ncci([Path(f) for f in args.files], release=args.release, effective=effective, setting=args.setting, progress=show)
    return EXIT_OK


def cmd_import_coverage(args: argparse.Namespace) -> int:
    """Import MCD article tables or Coverage API responses into the coverage store, then rebuild the graph
    (the store loads the imported articles beside the typed modules; kg/coverage)."""
    from spinekg.kg.build import build_graph
    from spinekg.kg.coverage.importer import import_coverage
    from spinekg.kg.coverage.scope import scope_from_graph
    from spinekg.kg.graph import load_graph

    result = import_coverage([Path(f) for f in args.files], scope_from_graph(load_graph(quiet=True)), replace=args.replace)
    for line in result.lines():
        print(line, file=sys.stderr if line.startswith("warning:") else sys.stdout, flush=True)
    build = build_graph()
    print(f"graph rebuilt with the imported articles: {build.summary()}", file=sys.stderr)
    return EXIT_OK


NCCI_RELEASE_COLUMNS = ["kind", "release", "in_force_from", "rows", "bytes", "files", "imported_at", "effective_dates"]


def cmd_push(args: argparse.Namespace) -> int:
    """spinekg push STORE_URL: the reasoned graph into an external store, for SPINEKG_SPARQL_ENDPOINT."""
    from spinekg.kg.build import build_graph
    from spinekg.kg.coverage.store import CoverageStore
    from spinekg.kg.remote import push

    build = build_graph()
    sent = push(args.store, build.asserted_path, build.inferred_path, build.icd10_path, coverage=CoverageStore().files())
    print(
        f"pushed {sent['asserted']:,} asserted, {sent['inferred']:,} inferred and {sent.get('icd10cm', 0):,} ICD-10-CM triples "
        f"(build {build.key}) to {args.store}"
    )
    return EXIT_OK


def cmd_ncci_lookup(args: argparse.Namespace) -> int:
    """spinekg ncci edits|mue|primaries CODE: the JSON of GET /codes/{code}/edits|mue|primaries."""
    from spinekg.kg.facts import ncci
    from spinekg.kg.ncci import NcciStore

    store = NcciStore.open()
    on = ncci.parse_on(args.on)
    if args.ncci_command == "edits":
        from spinekg.kg.facts import Facts
        from spinekg.kg.graph import load_graph

        # without an imported release, the ontology's rows answer for our codes
        family = None if store.has(f"ptp-{args.setting}") else ncci.family_ptp(Facts(load_graph(quiet=True)))
        answer = ncci.code_edits(store, args.code, on, args.setting, args.other, family)
    elif args.ncci_command == "mue":
        answer = ncci.code_mue(store, args.code, on, args.service_type)
    else:
        answer = ncci.addon_primaries(store, args.code, on)
    print(json.dumps(answer, indent=2, ensure_ascii=False))
    return EXIT_OK


def cmd_ncci_releases(args: argparse.Namespace) -> int:
    from spinekg.kg.ncci import NcciStore

    with NcciStore.open() as store:
        rows = [info.summary() for info in store.releases()]
    print(render(rows, NCCI_RELEASE_COLUMNS + (["sha256"] if args.format != "table" else []), args.format))
    return EXIT_OK


def cmd_ncci_family_module(args: argparse.Namespace) -> int:
    """spinekg ncci family-module: our codes' PTP rows of the imported releases as an ontology module."""
    from spinekg.kg import paths
    from spinekg.kg.graph import load_graph
    from spinekg.kg.ncci import NcciStore
    from spinekg.kg.ncci.family import family_edits, render_module, write_module
    from spinekg.kg.queries import get_query

    codes = sorted({str(row["code"]) for row in get_query("ncci-generated-codes").run(load_graph(quiet=True)).values()})
    if not codes:
        raise InputError("family", "no family is marked skg:ptpEditsGenerated in the ontology")
    sources: dict[str, str] = {}
    for item in args.source:
        setting, _, source = item.partition("=")
        if not source:
            raise InputError("--source", f"{item!r} is not of the form SETTING=SOURCE_ID")
        sources[setting] = source
    with NcciStore.open() as store:
        tables = [family_edits(store, codes, setting, args.release) for setting in args.setting or ["practitioner"]]
    missing = [t.setting for t in tables if t.setting not in sources]
    if missing:
        raise InputError("--source", f"name the source of the {missing[0]} table: --source {missing[0]}=SOURCE_ID")
    version = "+".join(dict.fromkeys(t.info.release for t in tables))
    out = Path(args.output) if args.output else paths.ontology_dir() / "edits" / "ncci-ptp.ttl"
    write_module(out, render_module(tables, sources, codes, version))
    print(f"{sum(len(t.edits) for t in tables):,} PTP rows of {len(codes)} codes (release {version}) -> {out}")
    return EXIT_OK


def cmd_ncci_diff(args: argparse.Namespace) -> int:
    """Counts of the PTP edits added, deleted, changed and removed between two releases; with --code, the rows."""
    from spinekg.kg.ncci import NcciStore, diff_ptp
    from spinekg.kg.ncci.diff import COLUMNS

    with NcciStore.open() as store:
        result = diff_ptp(store, args.old, args.new, setting=args.setting, code=args.code)
    rows = [row.flat() for row in result.rows]
    summary = result.summary()
    if args.format == "json":
        print(json.dumps({**summary, "rows": rows}, indent=2, ensure_ascii=False))
    elif args.format == "csv":
        print(render(rows, COLUMNS, "csv") if result.code else render([summary], list(summary), "csv"))
    else:
        counts = ", ".join(f"{result.counts[k]:,} {k}" for k in ("added", "deleted", "changed", "removed", "unchanged"))
        scope = f"ptp-{result.setting} {result.old.release} -> {result.new.release}"
        scope += f" (pairs with {result.code})" if result.code else ""
        print(f"{scope}: {counts}; rows matched by {result.matched_by}")
        if result.code:
            print(render(rows, COLUMNS, "table"))
    return EXIT_OK


def build_parser(extend: Callable[[Any], None] | None = None) -> argparse.ArgumentParser:
    """The command-line parser; ``extend`` may add subcommands (the api package adds ``serve``)."""
    from spinekg.kg import __version__

    parser = _Parser(prog="spinekg", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"spinekg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("build", help="reason over the ontology and cache the result in the build cache folder")
    p.add_argument("--force", action="store_true", help="reason again even if the cache is current")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser(
        "query",
        help="run a named query (queries/api, rules, checks) or a .rq file: SELECT as a table, ASK as true/false, "
        "CONSTRUCT/DESCRIBE as N-Triples",
    )
    p.add_argument("query", metavar="NAME|FILE")
    p.add_argument("--param", "-p", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--format", "-f", choices=("table", "json", "csv"), default="table")
    p.add_argument("--endpoint", metavar="URL", help="run against an external SPARQL endpoint instead of the embedded store")
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("queries", help="list the named queries and their parameters")
    p.add_argument("--kind", choices=QUERY_KINDS)
    p.add_argument("--format", "-f", choices=("table", "json", "csv"), default="table")
    p.set_defaults(func=cmd_queries)

    p = sub.add_parser("code-info", help="a readable summary of one code")
    p.add_argument("code")
    p.add_argument("--format", "-f", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_code_info)

    p = sub.add_parser("diagnosis", help="an ICD-10-CM code: title, billable, ancestors, children, releases")
    p.add_argument("code", help="with or without the dot: M80.08XA or M8008XA")
    p.add_argument("--on", metavar="YYYY-MM-DD", help="a date of service: the release in force then (default: the latest loaded)")
    p.add_argument("--format", "-f", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_diagnosis)

    p = sub.add_parser("export", help="one merged file (asserted + inferred) for tools that cannot follow imports")
    p.add_argument("--format", "-f", choices=("ttl", "owl"), default="ttl", help="Turtle or RDF/XML")
    p.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("check", help="run the quality checks (queries/checks/*-violation.rq)")
    p.add_argument("--profile", action="store_true", help="also check the OWL 2 DL profile with the OWL API")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("import-pfs", help="write a fee schedule module from a CMS PPRRVU CSV file")
    p.add_argument("csv", metavar="PPRRVU.csv")
    p.add_argument("--year", type=int, required=True)
    p.add_argument("--source", required=True, help="the source individual's local name, e.g. cms-pfs-rvu-2026-jul")
    p.add_argument("--output", "-o", required=True, metavar="FILE.ttl")
    p.set_defaults(func=cmd_import_pfs)
    p = sub.add_parser(
        "validate",
        help="check a claim (JSON) or a batch of claims (NDJSON)",
        description="Exit status: 0 valid, 1 invalid, 2 unusable input. With --batch: 1 if any claim "
        "is invalid, 2 if any line is unusable (that line gets an error object).",
    )
    p.add_argument("file", metavar="FILE|-", help="the claim JSON, or - for standard input")
    p.add_argument("--batch", action="store_true", help="one claim per line in, one verdict per line out")
    p.add_argument(
        "--max-lines", type=_positive, metavar="N", help="most lines in a claim (default SPINEKG_MAX_CLAIM_LINES, else 50)"
    )
    p.add_argument(
        "--max-bytes",
        type=_positive,
        metavar="N",
        help="largest claim JSON, or NDJSON line with --batch, in bytes (default SPINEKG_MAX_CLAIM_BYTES, else 65536)",
    )
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser(
        "code",
        help="code a documented procedure: a procedure record (JSON) or, with --note, an operative note (text)",
        description="Claim lines, each explained with its rule and sources, the documentation gaps and the warnings, "
        "and what was extracted (for a note, with character spans). Exit status: 0 coded, 1 nothing codable (the "
        "reason on stderr), 2 unusable input.",
    )
    p.add_argument("file", metavar="FILE|-", help="the record or note, or - for standard input")
    p.add_argument("--note", action="store_true", help="the input is an operative note (UTF-8 text), not a record")
    p.add_argument("--date-of-service", metavar="YYYY-MM-DD", help="with --note: the date of service (wins over the note's)")
    p.add_argument("--state", metavar="XX", help="with --note: the state where the service was rendered")
    p.add_argument(
        "--max-bytes", type=_positive, metavar="N", help="largest record in bytes (default SPINEKG_MAX_CLAIM_BYTES, else 65536)"
    )
    p.set_defaults(func=cmd_code)

    p = sub.add_parser("rules", help="list the claim rules (or, with --kinds, the rule kinds they are written in)")
    p.add_argument("--format", "-f", choices=("table", "json", "csv"), default="table")
    p.add_argument("--kinds", action="store_true", help="list the rule kinds: the table each reads and what a rule file may say")
    p.set_defaults(func=cmd_rules)
    p = sub.add_parser(
        "push",
        help="send the reasoned graph to an external SPARQL store (Graph Store Protocol URL, e.g. Oxigraph's "
        "http://host:7878/store); then set SPINEKG_SPARQL_ENDPOINT to its query URL",
    )
    p.add_argument("store", metavar="STORE_URL")
    p.set_defaults(func=cmd_push)

    p = sub.add_parser("import", help="import CMS tables into the cache folder (import ncci|coverage FILE...)")
    tables = p.add_subparsers(dest="table", required=True, parser_class=_Parser)
    p = tables.add_parser(
        "ncci",
        help="import NCCI PTP, MUE and add-on code edit files (TXT, CSV, xlsx, zip, .gz; recognised by their header)",
        description="Each table of each release is put in place atomically under <cache>/ncci/<kind>/<release>; "
        "the four parts of a PTP release (f1-f4) are imported together. Exit status: 2 for a file that cannot be "
        "imported (the line names the file and the row).",
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--release", metavar="R", help="the release when the file names do not tell it: v30.1, 2026Q2 or 2024-04-01")
    p.add_argument("--effective", metavar="YYYY-MM-DD", help="the date the release is in force from, when its name does not tell")
    p.add_argument("--setting", choices=("practitioner", "outpatient"), help="the setting of PTP files whose names don't say")
    p.set_defaults(func=cmd_import_ncci)
    p = tables.add_parser(
        "coverage",
        help="import the Medicare Coverage Database article download (CSV, zip) or Coverage API responses (JSON)",
        description="Keeps the articles that list our codes (and those the ontology types), writes them into "
        "<cache>/coverage (SPINEKG_COVERAGE_DIR) as one file per article version, publishes them atomically, and "
        "rebuilds the graph, which loads them beside the typed coverage modules; an imported version supersedes the "
        "typed facts of its article on its dates. Exit status: 2 for a file that cannot be imported (the line names the "
        "file and the row); the previous import is then left as it was.",
    )
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument(
        "--replace", action="store_true", help="keep none of the earlier imports (else the versions FILE does not hold are kept)"
    )
    p.set_defaults(func=cmd_import_coverage)

    p = sub.add_parser("ncci", help="the imported NCCI tables: releases, diff")
    ncci = p.add_subparsers(dest="ncci_command", required=True, parser_class=_Parser)
    for name, what in (
        ("edits", "the PTP edits of CODE in Column 1 (or, --with, between CODE and another code) in force on a date"),
        ("mue", "the MUE of CODE for a service type in the release in force on a date"),
        ("primaries", "the add-on code edits of CODE in force on a date: its primaries and edit types"),
    ):
        p = ncci.add_parser(name, help=what)
        p.add_argument("code", metavar="CODE")
        p.add_argument("--on", metavar="YYYY-MM-DD", help="the date of service (default: today)")
        if name == "edits":
            p.add_argument("--with", dest="other", metavar="CODE", help="only the edits between CODE and this code")
            p.add_argument("--setting", choices=("practitioner", "outpatient"), default="practitioner")
        if name == "mue":
            p.add_argument("--service-type", choices=("practitioner", "outpatient", "dme"), default="practitioner")
        p.set_defaults(func=cmd_ncci_lookup)
    p = ncci.add_parser("releases", help="list the imported releases of each NCCI table")
    p.add_argument("--format", "-f", choices=("table", "json", "csv"), default="table")
    p.set_defaults(func=cmd_ncci_releases)
    p = ncci.add_parser("family-module", help="write our codes' PTP rows of the imported releases as an ontology module")
    p.add_argument("--setting", action="append", choices=("practitioner", "outpatient"), help="a PTP table to read (repeatable)")
    p.add_argument("--release", metavar="R", help="the release to read (default: the newest imported)")
    p.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="SETTING=SOURCE_ID",
        help="the ontology source of a table, e.g. practitioner=cms-ncci-ptp-practitioner-2024",
    )
    p.add_argument("--output", "-o", metavar="PATH", help="default: ontology/edits/ncci-ptp.ttl of the data folder")
    p.set_defaults(func=cmd_ncci_family_module, setting=None)
    p = ncci.add_parser("diff", help="PTP edits added, deleted, changed and removed between two imported releases")
    p.add_argument("old", metavar="OLD")
    p.add_argument("new", metavar="NEW")
    p.add_argument("--code", "-c", metavar="C", help="only the pairs with this code in either column, listed")
    p.add_argument("--setting", choices=("practitioner", "outpatient"), default="practitioner")
    p.add_argument("--format", "-f", choices=("table", "json", "csv"), default="table")
    p.set_defaults(func=cmd_ncci_diff)
    if extend is not None:
        extend(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser(), argv)


def run(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse and dispatch, turning every user-facing error into one line and an exit status."""
    try:
        args = parser.parse_args(argv)
        status = int(args.func(args))
        sys.stdout.flush()  # here, so that a closed pipe is seen here and not at exit
        return status
    except UsageError as exc:
        return _fail(str(exc), EXIT_INPUT)
    except InputError as exc:
        return _fail(f"spinekg: error: {exc}", EXIT_INPUT)
    except SpinekgError as exc:
        return _fail(f"spinekg: error: {exc}", EXIT_ENVIRONMENT)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except Exception as exc:  # unexpected: one line too; SPINEKG_DEBUG=1 shows the traceback
        if os.environ.get("SPINEKG_DEBUG"):
            raise
        return _fail(_unexpected(exc), EXIT_ENVIRONMENT)


def _unexpected(exc: Exception) -> str:
    """One line for an error no command turned into a SpinekgError (never the data being processed)."""
    if isinstance(exc, ImportError):
        return f"spinekg: error: the installation is incomplete ({exc}); reinstall spinekg"
    if isinstance(exc, OSError):  # the system refused: a full disk, a cache file that vanished, ...
        where = f" ({exc.filename})" if exc.filename else ""
        return f"spinekg: error: {exc.strerror or type(exc).__name__}{where}"
    return f"spinekg: internal error ({type(exc).__name__}); run again with SPINEKG_DEBUG=1 for the traceback"


def _fail(line: str, status: int) -> int:
    with contextlib.suppress(OSError):  # stderr closed too: the status still tells
        print(line.replace("\n", " "), file=sys.stderr)
    return status


def _silence_stdout() -> None:
    """After EPIPE, point stdout at /dev/null, so that the interpreter's last flush raises nothing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
