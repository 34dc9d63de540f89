"""Read-only SPARQL for untrusted callers.

Each query runs in a worker process (``python -m spinekg.kg.sparql``), never in the server:

* the query text is first made canonical (``canonical_query``: codepoint escapes expanded as SPARQL
  1.1 section 19.2 says, line ends made \n) and that one text goes to both rdflib and Oxigraph, so
  that the two lexers cannot read it differently;
* the worker reads the query with rdflib's SPARQL 1.1 grammar and refuses updates and SERVICE
  anywhere in the parsed query and in its algebra (the verdict is cached per query text); a query
  that does not parse, or nests too deeply to be read, is a syntax error;
* after loading the store, the worker lowers its address-space limit (RLIMIT_AS) and, on Linux
  x86-64 and AArch64, installs a seccomp filter under which ``socket()`` and ``socketpair()`` fail
  for every family (and io_uring cannot be set up): even a SERVICE the parser missed reaches no
  network. A worker that cannot install it serves nothing unless the operator allowed it
  (``SparqlPoolConfig.allow_unconfined``);
* the parent gives each query a time limit (a runaway worker is killed and replaced), cuts a result
  at ``max_rows`` and refuses one larger than ``max_bytes``;
* waiting for a worker happens in the pool's own dispatcher threads, one per worker, behind a
  bounded queue: when it is full, or a query waited a whole time limit, the caller is told to come
  back (``SparqlBusy``) instead of holding a thread of the web server.

Oxigraph cannot cancel a running query, hence processes rather than threads."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import errno
import functools
import logging
import os
import platform
import queue
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast
from xml.sax.saxutils import escape

import mimeparse

from spinekg.kg.errors import SpinekgError

log = logging.getLogger("spinekg.sparql")

JSON_RESULTS = "application/sparql-results+json"
XML_RESULTS = "application/sparql-results+xml"
CSV = "text/csv"
TSV = "text/tab-separated-values"
TURTLE = "text/turtle"
NTRIPLES = "application/n-triples"
JSONLD = "application/ld+json"
RDFXML = "application/rdf+xml"

# media type -> serialiser, for SELECT/ASK ("solutions") and CONSTRUCT/DESCRIBE ("graph")
SELECT_FORMATS = {
    JSON_RESULTS: "json",
    "application/json": "json",
    XML_RESULTS: "xml",
    "application/xml": "xml",
    CSV: "csv",
    TSV: "tsv",
}
GRAPH_FORMATS = {TURTLE: "turtle", NTRIPLES: "ntriples", JSONLD: "jsonld", RDFXML: "rdfxml"}
# For Accept negotiation, in increasing preference: python-mimeparse breaks ties towards the end. The
# generic application/json and application/xml come last, for clients that name them.
_PREFERENCE = {
    "solutions": ["application/xml", "application/json", TSV, CSV, XML_RESULTS, JSON_RESULTS],
    "graph": [NTRIPLES, RDFXML, JSONLD, TURTLE],
}
# The `format` / `output` / `results` parameter values that SPARQLWrapper, Virtuoso and Fuseki send. The
# same name may mean a different type per query form: `xml` is SPARQL XML results for SELECT and
# RDF/XML for CONSTRUCT, `json` is SPARQL JSON results or JSON-LD.
FORMAT_NAMES = {
    "solutions": {"json": JSON_RESULTS, "srj": JSON_RESULTS, "xml": XML_RESULTS, "srx": XML_RESULTS, "csv": CSV, "tsv": TSV},
    "graph": {
        "xml": RDFXML,
        "rdf": RDFXML,
        "rdf+xml": RDFXML,
        "rdfxml": RDFXML,
        "turtle": TURTLE,
        "ttl": TURTLE,
        "n3": TURTLE,
        "nt": NTRIPLES,
        "ntriples": NTRIPLES,
        "n-triples": NTRIPLES,
        "json-ld": JSONLD,
        "jsonld": JSONLD,
        "json": JSONLD,
    },
}
FORMS = {"SELECT": "solutions", "ASK": "solutions", "CONSTRUCT": "graph", "DESCRIBE": "graph"}


# ---------------------------------------------------------------- errors


class SparqlError(SpinekgError):
    """A SPARQL request that cannot be answered as asked; ``field`` names what to change."""

    default_field = "query"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field or self.default_field


class SparqlRefused(SparqlError):
    """Well formed but not allowed here: an update, SERVICE."""


class SparqlSyntaxError(SparqlError):
    """The query does not parse, nests too deeply, or fails while it is evaluated."""


class SparqlProtocolError(SparqlError):
    """The request breaks the SPARQL protocol (two queries, a graph name that is not an IRI)."""


class SparqlNotAcceptable(SparqlError):
    """No result format the client accepts."""

    default_field = "Accept"


class SparqlTooLarge(SparqlError):
    """The result would be larger than the byte limit of one answer."""


class SparqlTimeout(SparqlError):
    """The query ran past the time limit and was cut off."""


class SparqlOutOfMemory(SparqlError):
    """The query needed more memory than a worker may use."""


class SparqlBusy(SparqlError):
    """Too many queries are waiting, or none got a worker within the time limit."""


class SparqlUnavailable(SparqlError):
    """A worker could not be started or stopped while answering."""


_ERRORS: dict[str, type[SparqlError]] = {
    cls.__name__: cls
    for cls in (
        SparqlRefused,
        SparqlSyntaxError,
        SparqlProtocolError,
        SparqlNotAcceptable,
        SparqlTooLarge,
        SparqlTimeout,
        SparqlOutOfMemory,
        SparqlBusy,
        SparqlUnavailable,
    )
}


# ---------------------------------------------------------------- requests and results


@dataclass(frozen=True)
class SparqlRequest:
    """One query with what the protocol says about it: Accept, `format` values, the dataset."""

    query: str
    accept: str | None = None
    formats: tuple[str, ...] = ()
    default_graphs: tuple[str, ...] = ()
    named_graphs: tuple[str, ...] = ()
    timeout: float = 10.0
    max_rows: int = 10_000
    max_bytes: int = 16 * 1024 * 1024


@dataclass
class SparqlResult:
    body: bytes
    media_type: str
    truncated: bool
    rows: int


@dataclass(frozen=True)
class SparqlPoolConfig:
    workers: int = 2
    memory_bytes: int = 512 * 1024 * 1024  # per worker; 0 = no limit
    queue_size: int = 32  # queries that may wait for a worker, beyond those running
    start_timeout: float = 120.0
    allow_unconfined: bool = False  # serve queries even where the workers' network filter cannot be installed


# ---------------------------------------------------------------- content negotiation


# Negotiation reads at most this much of an Accept header (or a media-type `format` value): python-mimeparse
# is slow on long headers, and it runs on the event loop. Whatever lies beyond is ignored.
MAX_ACCEPT_CHARS = 4096
MAX_MEDIA_RANGES = 64


def cap_accept(accept: str | None) -> str | None:
    """The part of an Accept header negotiation considers: the media ranges that lie wholly within its
    first MAX_ACCEPT_CHARS characters, at most MAX_MEDIA_RANGES of them, lower-cased (media types are
    matched case-insensitively)."""
    if accept is None:
        return None
    parts = accept[: MAX_ACCEPT_CHARS + 1].split(",")
    if len(accept) > MAX_ACCEPT_CHARS:
        parts = parts[:-1]  # the range the cut went through (or the one after it)
    return ",".join(parts[:MAX_MEDIA_RANGES]).lower()


def best_type(supported: list[str], accept: str) -> str | None:
    """The best of ``supported`` (in increasing preference) for an Accept header, q-values honoured (q=0
    refuses a type): "" when none is acceptable, None when the header says nothing usable. Only the
    first MAX_ACCEPT_CHARS characters / MAX_MEDIA_RANGES ranges count; matching ignores case."""
    ranges = []
    for part in (cap_accept(accept) or "").split(","):
        if not part.strip():
            continue
        try:
            mimeparse.parse_media_range(part)
        except ValueError:  # MimeTypeParseException: skip the one bad range, keep the others
            continue
        ranges.append(part)
    if not ranges:
        return None
    return str(mimeparse.best_match(supported, ",".join(ranges)) or "")


def negotiate(accept: str | None, form: str) -> str:
    """The media type to answer with for ``form`` "solutions" (SELECT/ASK) or "graph"
    (CONSTRUCT/DESCRIBE); "" when nothing is acceptable."""
    default = _PREFERENCE[form][-1]
    if not accept:
        return default
    best = best_type(_PREFERENCE[form], accept)
    return default if best is None else best


def format_type(value: str, form: str) -> str | None:
    """The media type a `format` value asks for, for this query form (None: not for this form)."""
    value = value.strip()
    if "/" in value:
        return best_type(_PREFERENCE[form], value) or None
    return FORMAT_NAMES[form].get(value.lower())


def _known_format(value: str) -> bool:
    value = value.strip()
    if "/" in value:
        return any(best_type(types, value) for types in _PREFERENCE.values())
    return any(value.lower() in names for names in FORMAT_NAMES.values())


def choose_media(form: str, accept: str | None, formats: tuple[str, ...] = ()) -> str:
    """``format`` values first (in order; the first that names a type for this query form wins), then
    Accept. Raises SparqlNotAcceptable when neither leaves a type."""
    # capped before the cache, whose keys would otherwise hold whole headers
    return _choose_media(form, cap_accept(accept), tuple(value[:MAX_ACCEPT_CHARS] for value in formats[:MAX_MEDIA_RANGES]))


@functools.lru_cache(maxsize=256)  # clients send the same few Accept headers over and over
def _choose_media(form: str, accept: str | None, formats: tuple[str, ...]) -> str:
    values = [v for v in formats if v.strip()]
    for value in values:
        media = format_type(value, form)
        if media:
            return media
    if values and not any(_known_format(v) for v in values):
        names = ", ".join(sorted(set(FORMAT_NAMES["solutions"]) | set(FORMAT_NAMES["graph"])))
        raise SparqlNotAcceptable(f"{values[0]!r} is not a result format; use one of {names} or a media type", "format")
    media = negotiate(accept, form)
    if not media:
        offered = ", ".join(sorted(SELECT_FORMATS if form == "solutions" else GRAPH_FORMATS))
        kind = "SELECT and ASK" if form == "solutions" else "CONSTRUCT and DESCRIBE"
        raise SparqlNotAcceptable(f"no acceptable result format; {kind} answer as {offered}")
    return media


# ---------------------------------------------------------------- service description

SERVICE_DESCRIPTION_TYPES = [RDFXML, JSONLD, TURTLE]  # increasing preference
_PLACEHOLDER = "https://endpoint.spinekg.invalid/sparql"  # .invalid never resolves; replaced before sending
_DESCRIPTION = """
@prefix sd: <http://www.w3.org/ns/sparql-service-description#> .
@prefix fmt: <http://www.w3.org/ns/formats/> .
@prefix dcterms: <http://purl.org/dc/terms/> .
<{endpoint}> a sd:Service ;
    sd:endpoint <{endpoint}> ;
    sd:supportedLanguage sd:SPARQL11Query ;
    sd:feature sd:UnionDefaultGraph ;
    sd:resultFormat fmt:SPARQL_Results_JSON, fmt:SPARQL_Results_XML, fmt:SPARQL_Results_CSV, fmt:SPARQL_Results_TSV,
        fmt:Turtle, fmt:N-Triples, fmt:JSON-LD, fmt:RDF_XML ;
    dcterms:description '''Read-only SPARQL over the spinekg reasoned graph. Without FROM, FROM NAMED, default-graph-uri
or named-graph-uri the default graph is the union of the asserted and the inferred triples. Updates, LOAD and
SERVICE are refused; each query runs under a time, a memory and a result-size limit.''' ;
    sd:defaultDataset [ a sd:Dataset ;
        sd:defaultGraph [ a sd:Graph ] ;
        sd:namedGraph [ a sd:NamedGraph ; sd:name <https://w3id.org/spinekg/graph/asserted> ] ,
                      [ a sd:NamedGraph ; sd:name <https://w3id.org/spinekg/graph/inferred> ] ] .
"""


@functools.lru_cache(maxsize=16)
def service_description(media: str, public_base_url: str | None = None) -> bytes:
    """The SPARQL service description in Turtle, JSON-LD or RDF/XML. The endpoint's IRI is
    ``public_base_url`` + /sparql when one is configured, else the empty relative IRI (the document
    itself, which is the endpoint): never taken from the request, whose Host header a client chooses."""
    import pyoxigraph as ox

    formats = {TURTLE: ox.RdfFormat.TURTLE, JSONLD: ox.RdfFormat.JSON_LD, RDFXML: ox.RdfFormat.RDF_XML}
    triples = [q.triple for q in ox.parse(_DESCRIPTION.format(endpoint=_PLACEHOLDER), format=ox.RdfFormat.TURTLE)]
    prefixes = {"sd": "http://www.w3.org/ns/sparql-service-description#", "fmt": "http://www.w3.org/ns/formats/"}
    out = ox.serialize(triples, format=formats[media], prefixes=prefixes if media == TURTLE else None)
    text = out.decode() if isinstance(out, bytes) else ""
    endpoint = public_base_url.rstrip("/") + "/sparql" if public_base_url else ""
    # the placeholder only ever stands between <>, "" or an attribute's quotes, so this yields <>, "" or about=""
    return text.replace(_PLACEHOLDER, endpoint).encode()


# ---------------------------------------------------------------- reading the query (worker side)


@dataclass(frozen=True)
class QueryShape:
    form: str  # SELECT, ASK, CONSTRUCT, DESCRIBE
    has_dataset: bool  # FROM or FROM NAMED in the query


_QUERY_FORMS = {"SelectQuery": "SELECT", "AskQuery": "ASK", "ConstructQuery": "CONSTRUCT", "DescribeQuery": "DESCRIBE"}
_UPDATE_NAMES = {
    "InsertData": "INSERT DATA",
    "DeleteData": "DELETE DATA",
    "DeleteWhere": "DELETE WHERE",
    "Modify": "INSERT/DELETE",
    "Load": "LOAD",
    "Clear": "CLEAR",
    "Drop": "DROP",
    "Create": "CREATE",
    "Add": "ADD",
    "Move": "MOVE",
    "Copy": "COPY",
}
SERVICE_REFUSED = "SERVICE is refused: this endpoint does not query other endpoints"
TOO_DEEP = "the query nests too deeply to be read; flatten its groups or parenthesised expressions"
EVALUATION_FAILED = "the query failed during evaluation"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


# SPARQL 1.1 section 19.2: \uXXXX and \UXXXXXXXX (case-sensitive; the X are hex digits of either case) stand
# for a code point anywhere in a query, and are replaced before it is parsed.
_CODEPOINT_ESCAPE = re.compile(r"\\u([0-9A-Fa-f]{4})|\\U([0-9A-Fa-f]{8})")
# What rdflib's parser would still expand (it ignores case and takes 4 or 8 digits after either letter).
_LEFTOVER_ESCAPE = re.compile(r"\\[uU][0-9A-Fa-f]{4}")
_LINE_END = re.compile(r"\r\n?")
ESCAPE_MAKES_ESCAPE = (
    "the query's \\u or \\U escapes spell another escape once expanded, which SPARQL does not allow; write the character itself"
)


def canonical_query(query: str) -> str:
    """The one text of a query both parsers read: codepoint escapes expanded exactly as SPARQL 1.1
    section 19.2 says (one pass, before parsing, wherever they are), then every line end (\\r\\n, a lone
    \\r) made \\n, the only one rdflib knows ends a comment.

    rdflib's parser runs its own escape pass (case-insensitive, 4 or 8 digits after either letter) and
    Oxigraph unescapes again inside strings and IRIs; so that both are no-ops, a query in which the
    expansion leaves anything escape-like is refused (SparqlSyntaxError) rather than expanded again. A
    single pass is the specification's; an escape-like text that survives it can stand only in a string or
    an IRI, where the grammar forbids a backslash followed by u (only in a comment would it be valid), so
    refusing it refuses no query but such a comment; re-expanding to a fixpoint instead would accept text
    the specification rejects."""

    def expand(match: re.Match[str]) -> str:
        code = int(match.group(1) or match.group(2), 16)
        if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            raise SparqlSyntaxError(f"{match.group(0)} is not a Unicode code point a query may hold")
        return chr(code)

    text = _CODEPOINT_ESCAPE.sub(expand, query) if "\\" in query else query
    if "\\" in text and _LEFTOVER_ESCAPE.search(text):
        raise SparqlSyntaxError(ESCAPE_MAKES_ESCAPE)
    return _LINE_END.sub("\n", text) if "\r" in text else text


def _has_service(root: object) -> bool:
    """True if any node of a parse tree or algebra (rdflib CompValues, ParseResults, lists) is a SERVICE
    pattern. Iterative: a deep tree must not overflow the stack."""
    from pyparsing import ParseResults
    from rdflib.plugins.sparql.parserutils import CompValue

    stack: list[object] = [root]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if isinstance(node, str | bytes | int | float) or node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, CompValue):
            if node.name == "ServiceGraphPattern":
                return True
            stack.extend(dict.values(node))
        elif isinstance(node, ParseResults):
            stack.extend(list(node))
            stack.extend(cast(Any, node).values())  # named results (pyparsing leaves values() unannotated)
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list | tuple | set | frozenset):
            stack.extend(node)
        elif hasattr(node, "algebra"):  # rdflib's Query(prologue, algebra)
            stack.append(node.algebra)
    return False


def _verdict(query: str) -> QueryShape | tuple[str, str]:
    """What rdflib's SPARQL 1.1 parser makes of a query text: its shape, or (error class, message)."""
    from pyparsing import ParseBaseException
    from rdflib.plugins.sparql.algebra import translateQuery
    from rdflib.plugins.sparql.parser import parseQuery, parseUpdate

    try:
        parsed = parseQuery(query)
    except RecursionError:
        return ("SparqlSyntaxError", TOO_DEEP)
    except ParseBaseException as exc:
        try:
            update = parseUpdate(query)
        except RecursionError:
            return ("SparqlSyntaxError", TOO_DEEP)
        except ParseBaseException:
            return ("SparqlSyntaxError", f"the query does not parse: {_first_line(exc)}")
        requests = [str(getattr(r, "name", "")) for r in update["request"]] if "request" in update else []
        if not requests:
            return ("SparqlSyntaxError", f"the query does not parse: {_first_line(exc)}")
        operation = _UPDATE_NAMES.get(requests[0], "SPARQL Update")
        return ("SparqlRefused", f"{operation} is refused: the SPARQL endpoint is read-only")
    try:
        if _has_service(parsed):
            return ("SparqlRefused", SERVICE_REFUSED)
        translated = translateQuery(parsed)
        if _has_service(translated.algebra):
            return ("SparqlRefused", SERVICE_REFUSED)
    except RecursionError:
        return ("SparqlSyntaxError", TOO_DEEP)
    except Exception as exc:  # noqa: BLE001 - rdflib's translation raises plain exceptions for invalid queries
        # rdflib's own messages (plain Exception) name what is wrong; anything else is a failure inside rdflib
        detail = f": {_first_line(exc)}" if type(exc) is Exception else ""
        return ("SparqlSyntaxError", f"the query is not valid SPARQL 1.1{detail}")
    form = _QUERY_FORMS.get(str(translated.algebra.name))
    if form is None:
        return ("SparqlSyntaxError", "the query is not a SELECT, ASK, CONSTRUCT or DESCRIBE")
    return QueryShape(form, bool(translated.algebra.datasetClause))


# Verdicts per query text (rdflib takes 2-130 ms to read one); long texts are read every time, so that the
# cache stays small (at most VERDICT_CACHE_SIZE x VERDICT_CACHE_LENGTH characters of keys).
VERDICT_CACHE_SIZE, VERDICT_CACHE_LENGTH = 1024, 16_384
_cached_verdict = functools.lru_cache(maxsize=VERDICT_CACHE_SIZE)(_verdict)


def inspect_query(query: str) -> QueryShape:
    """The query's form and whether it names its dataset; raises SparqlRefused for updates and SERVICE,
    SparqlSyntaxError for what does not parse."""
    verdict = _cached_verdict(query) if len(query) <= VERDICT_CACHE_LENGTH else _verdict(query)
    if isinstance(verdict, QueryShape):
        return verdict
    kind, message = verdict
    raise _ERRORS[kind](message)


# ---------------------------------------------------------------- serialisation (worker side)


def _term_json(term: Any) -> dict[str, str]:
    import pyoxigraph as ox

    if isinstance(term, ox.NamedNode):
        return {"type": "uri", "value": term.value}
    if isinstance(term, ox.BlankNode):
        return {"type": "bnode", "value": term.value}
    if isinstance(term, ox.Literal):
        out = {"type": "literal", "value": term.value}
        if term.language:
            out["xml:lang"] = term.language
        elif term.datatype.value != "http://www.w3.org/2001/XMLSchema#string":
            out["datatype"] = term.datatype.value
        return out
    return {"type": "triple", "value": str(term)}


# XML 1.0 cannot carry these, not even as character references: C0 controls but tab, LF and CR, U+FFFE and
# U+FFFF (surrogates never reach UTF-8 bytes). Matched in the UTF-8 body, where each is its own byte sequence.
_NOT_XML = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]|\xef\xbf[\xbe\xbf]")
_XML_TEXT = {"\r": "&#13;"}  # a raw CR would be read back as LF
_XML_ATTRIBUTE = {'"': "&quot;", "\r": "&#13;", "\n": "&#10;", "\t": "&#9;"}


def _not_xml(media: str) -> SparqlNotAcceptable:
    other = "JSON results (format=json or Accept: application/sparql-results+json)"
    if media == RDFXML:
        other = "Turtle, N-Triples or JSON-LD (format=turtle, nt or json-ld)"
    return SparqlNotAcceptable(
        f"the result holds characters XML 1.0 cannot carry (control characters such as U+0001); ask for {other}"
    )


def _xml(value: str) -> str:
    return escape(value, _XML_TEXT)


def _xml_attribute(value: str) -> str:
    return escape(value, _XML_ATTRIBUTE)


def _term_xml(term: Any) -> str:
    import pyoxigraph as ox

    if isinstance(term, ox.NamedNode):
        return f"<uri>{_xml(term.value)}</uri>"
    if isinstance(term, ox.BlankNode):
        return f"<bnode>{_xml(term.value)}</bnode>"
    if isinstance(term, ox.Literal):
        if term.language:
            return f'<literal xml:lang="{_xml_attribute(term.language)}">{_xml(term.value)}</literal>'
        if term.datatype.value != "http://www.w3.org/2001/XMLSchema#string":
            return f'<literal datatype="{_xml_attribute(term.datatype.value)}">{_xml(term.value)}</literal>'
        return f"<literal>{_xml(term.value)}</literal>"
    return f"<literal>{_xml(str(term))}</literal>"


def _csv_cell(term: Any) -> str:
    if term is None:
        return ""
    value = str(getattr(term, "value", term))
    return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\n\r') else value


def serialize_solutions(variables: list[str], rows: list[list[Any]], fmt: str) -> bytes:
    import orjson

    if fmt == "json":
        bindings = [{v: _term_json(t) for v, t in zip(variables, row, strict=True) if t is not None} for row in rows]
        return orjson.dumps({"head": {"vars": variables}, "results": {"bindings": bindings}})
    if fmt == "xml":
        head = "".join(f'<variable name="{_xml_attribute(v)}"/>' for v in variables)
        results = "".join(
            "<result>"
            + "".join(
                f'<binding name="{_xml_attribute(v)}">{_term_xml(t)}</binding>'
                for v, t in zip(variables, row, strict=True)
                if t is not None
            )
            + "</result>"
            for row in rows
        )
        return (
            '<?xml version="1.0"?>\n<sparql xmlns="http://www.w3.org/2005/sparql-results#">'
            f"<head>{head}</head><results>{results}</results></sparql>\n"
        ).encode()
    if fmt == "csv":
        lines = [",".join(variables)] + [",".join(_csv_cell(t) for t in row) for row in rows]
        return ("\r\n".join(lines) + "\r\n").encode()
    lines = ["\t".join("?" + v for v in variables)] + ["\t".join("" if t is None else str(t) for t in row) for row in rows]
    return ("\n".join(lines) + "\n").encode()


def serialize_boolean(value: bool, fmt: str) -> bytes:
    if fmt == "xml":
        return (
            '<?xml version="1.0"?>\n<sparql xmlns="http://www.w3.org/2005/sparql-results#"><head/>'
            f"<boolean>{'true' if value else 'false'}</boolean></sparql>\n"
        ).encode()
    if fmt in ("csv", "tsv"):
        return f"{'true' if value else 'false'}\n".encode()
    return b'{"head":{},"boolean":' + (b"true" if value else b"false") + b"}"


def serialize_triples(triples: list[Any], fmt: str) -> bytes:
    import pyoxigraph as ox

    formats = {
        "turtle": ox.RdfFormat.TURTLE,
        "ntriples": ox.RdfFormat.N_TRIPLES,
        "jsonld": ox.RdfFormat.JSON_LD,
        "rdfxml": ox.RdfFormat.RDF_XML,
    }
    out = ox.serialize(triples, format=formats[fmt])
    return out if isinstance(out, bytes) else b""


def _size(term: Any) -> int:
    """About what a term costs in a serialised answer (its text plus markup)."""
    if term is None:
        return 0
    value = getattr(term, "value", None)
    return (len(value) if isinstance(value, str) else len(str(term))) + 40


def _too_large(max_bytes: int) -> SparqlTooLarge:
    return SparqlTooLarge(
        f"the result is larger than {max_bytes:,} bytes, the limit for one answer; add LIMIT or select fewer or shorter values"
    )


def dataset_arguments(request: SparqlRequest, shape: QueryShape) -> dict[str, Any]:
    """Store.query arguments for the SPARQL 1.1 Protocol dataset rules: default-graph-uri and
    named-graph-uri win over FROM / FROM NAMED in the query; with neither, the default graph is the
    union of the asserted and the inferred graph."""
    import pyoxigraph as ox

    if request.default_graphs or request.named_graphs:

        def iri(value: str, name: str) -> ox.NamedNode:
            try:
                return ox.NamedNode(value)
            except ValueError:
                raise SparqlProtocolError(f"{value!r} is not an absolute IRI", name) from None

        return {
            "default_graph": [iri(g, "default-graph-uri") for g in request.default_graphs],
            "named_graphs": [iri(g, "named-graph-uri") for g in request.named_graphs],
        }
    if shape.has_dataset:
        return {}
    return {"use_default_graph_as_union": True}


def execute(store: Any, request: SparqlRequest, check: bool = True) -> SparqlResult:
    """Read, run and serialise one query on a store (worker side). ``check=False`` skips the parser,
    for tests of what the worker's other defences do on their own."""
    import pyoxigraph as ox

    query = canonical_query(request.query)  # the same text for rdflib and for Oxigraph
    shape = inspect_query(query) if check else QueryShape("SELECT", False)
    media = choose_media(FORMS[shape.form], request.accept, request.formats) if check else JSON_RESULTS
    try:
        result = store.query(query, **dataset_arguments(request, shape))
    except SyntaxError as exc:
        raise SparqlSyntaxError(f"the query does not parse: {_first_line(exc)}") from None
    if isinstance(result, ox.QueryBoolean):
        return SparqlResult(serialize_boolean(bool(result), SELECT_FORMATS[media]), media, False, 1)
    budget = request.max_bytes
    if isinstance(result, ox.QuerySolutions):
        variables = [v.value for v in result.variables]
        rows: list[list[Any]] = []
        truncated = False
        for solution in result:
            if len(rows) >= request.max_rows:
                truncated = True
                break
            row = [solution[v] for v in variables]
            budget -= sum(_size(t) for t in row)
            if budget < 0:
                raise _too_large(request.max_bytes)
            rows.append(row)
        body, count = serialize_solutions(variables, rows, SELECT_FORMATS.get(media, "json")), len(rows)
    else:
        if media not in GRAPH_FORMATS:
            media = TURTLE
        triples: list[Any] = []
        truncated = False
        for triple in result:
            if len(triples) >= request.max_rows:
                truncated = True
                break
            budget -= _size(triple.subject) + _size(triple.predicate) + _size(triple.object)
            if budget < 0:
                raise _too_large(request.max_bytes)
            triples.append(triple)
        body, count = serialize_triples(triples, GRAPH_FORMATS[media]), len(triples)
    if len(body) > request.max_bytes:
        raise _too_large(request.max_bytes)
    if (media == RDFXML or SELECT_FORMATS.get(media) == "xml") and _NOT_XML.search(body):
        raise _not_xml(media)  # an ill-formed document would be worse than none
    return SparqlResult(body, media, truncated, count)


# ---------------------------------------------------------------- isolation (worker side)

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_FILTER_FLAG_TSYNC = 1
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
IO_URING_SETUP = 425  # the same number on every architecture
X32_SYSCALL_BIT = 0x40000000
# machine -> (AUDIT_ARCH_*, socket, socketpair and seccomp syscall numbers)
SECCOMP_ARCHES = {
    "x86_64": (0xC000003E, 41, 53, 317),
    "amd64": (0xC000003E, 41, 53, 317),
    "aarch64": (0xC00000B7, 198, 199, 277),
    "arm64": (0xC00000B7, 198, 199, 277),
}
NETWORK_FILTERED = "seccomp: no sockets"


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def network_filter_program(audit_arch: int, socket_nr: int, socketpair_nr: int) -> list[tuple[int, int, int, int]]:
    """A classic-BPF seccomp program: socket() and socketpair() fail with EPERM whatever the family
    (AF_UNIX too: a host resolving names through nscd or systemd-resolved could carry a lookup over a
    Unix socket), and so do io_uring_setup (io_uring can open sockets without the socket syscall), x32
    calls and any call from another architecture; everything else is allowed. The worker talks to its
    parent over pipes (fds 0 and 1), never a socket. Instructions are (code, jt, jf, k)."""
    ld_abs = 0x00 | 0x00 | 0x20  # BPF_LD | BPF_W | BPF_ABS
    jeq, jge, ret = 0x05 | 0x10, 0x05 | 0x30, 0x06  # BPF_JMP|BPF_JEQ|BPF_K, BPF_JMP|BPF_JGE|BPF_K, BPF_RET|BPF_K
    deny = SECCOMP_RET_ERRNO | errno.EPERM
    return [
        (ld_abs, 0, 0, 4),  # 0: A = seccomp_data.arch
        (jeq, 1, 0, audit_arch),  # 1: our architecture? go to 3
        (ret, 0, 0, deny),  # 2: another ABI: refuse
        (ld_abs, 0, 0, 0),  # 3: A = seccomp_data.nr
        (jge, 4, 0, X32_SYSCALL_BIT),  # 4: x32 call: go to 9
        (jeq, 3, 0, IO_URING_SETUP),  # 5: io_uring_setup: go to 9
        (jeq, 2, 0, socket_nr),  # 6: socket: go to 9
        (jeq, 1, 0, socketpair_nr),  # 7: socketpair: go to 9
        (ret, 0, 0, SECCOMP_RET_ALLOW),  # 8
        (ret, 0, 0, deny),  # 9
    ]


def install_network_filter() -> None:
    """Forbid this process (all its threads) to open any socket, Unix ones included, for good. Raises
    OSError where it cannot be done (not Linux, an architecture without a program here, no seccomp)."""
    if not sys.platform.startswith("linux"):
        raise OSError(errno.ENOSYS, f"seccomp needs Linux, not {sys.platform}")
    machine = platform.machine().lower()
    if machine not in SECCOMP_ARCHES:
        raise OSError(errno.ENOSYS, f"no seccomp program for the {machine} architecture")
    audit_arch, socket_nr, socketpair_nr, seccomp_nr = SECCOMP_ARCHES[machine]
    program = network_filter_program(audit_arch, socket_nr, socketpair_nr)
    filters = (_SockFilter * len(program))(*(_SockFilter(code, jt, jf, k) for code, jt, jf, k in program))
    fprog = _SockFprog(len(program), filters)
    libc = ctypes.CDLL(None, use_errno=True)
    ulong = ctypes.c_ulong
    if libc.prctl(ctypes.c_int(PR_SET_NO_NEW_PRIVS), ulong(1), ulong(0), ulong(0), ulong(0)) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(code)}")
    # seccomp(2) with TSYNC filters every thread of the process; prctl only the calling one (older kernels)
    rc = libc.syscall(
        ctypes.c_long(seccomp_nr), ulong(SECCOMP_SET_MODE_FILTER), ulong(SECCOMP_FILTER_FLAG_TSYNC), ctypes.byref(fprog)
    )
    if rc != 0 and ctypes.get_errno() in (errno.ENOSYS, errno.EINVAL):
        rc = libc.prctl(ctypes.c_int(PR_SET_SECCOMP), ulong(SECCOMP_MODE_FILTER), ctypes.byref(fprog), ulong(0), ulong(0))
    if rc != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"seccomp: {os.strerror(code)}")


def _vm_size() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def isolate(memory_bytes: int) -> dict[str, Any]:
    """Limit this worker's address space and cut it off from the network; say what took effect."""
    out: dict[str, Any] = {"memory_limit_bytes": None, "network": "parser only"}
    if memory_bytes > 0:
        try:
            import resource

            # never below what the loaded store already maps, or every allocation would fail
            limit = max(memory_bytes, _vm_size() + 64 * 1024 * 1024)
            _, hard = resource.getrlimit(resource.RLIMIT_AS)
            if hard != resource.RLIM_INFINITY:
                limit = min(limit, hard)
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
            out["memory_limit_bytes"] = limit
        except (ImportError, ValueError, OSError) as exc:
            out["memory_error"] = _first_line(exc)
    try:
        install_network_filter()
        out["network"] = NETWORK_FILTERED
    except OSError as exc:
        out["network_error"] = _first_line(exc)
    return out


# ---------------------------------------------------------------- the worker process
# Workers are plain subprocesses (python -m spinekg.kg.sparql ASSERTED INFERRED MEMORY) talking over their
# stdin and stdout with multiprocessing's framed pickles of plain values: no dependence on how the
# parent was started.


def answer(store: Any, message: dict[str, Any]) -> tuple[Any, ...]:
    """The worker's reply to one request: ("ok", result) or (error class, message, field). An error the
    query itself causes keeps its message; any other failure while evaluating becomes a generic 400,
    since its text (an errno, a Rust panic) would tell a caller about the worker and nothing about the query."""
    try:
        result = execute(store, SparqlRequest(**message))
        return ("ok", (result.body, result.media_type, result.truncated, result.rows))
    except SparqlError as exc:
        return (type(exc).__name__, str(exc), exc.field)
    except MemoryError:
        return ("SparqlOutOfMemory", "", "query")
    except RecursionError:
        return ("SparqlSyntaxError", TOO_DEEP, "query")
    except Exception:  # noqa: BLE001 - an evaluation failure becomes a 400 that reveals nothing of the worker
        return ("SparqlSyntaxError", EVALUATION_FAILED, "query")


def serve(asserted: str, inferred: str, memory_bytes: int, allow_unconfined: bool = False) -> None:
    from spinekg.kg.graph import KnowledgeGraph

    inbox, outbox = Connection(os.dup(0)), Connection(os.dup(1))
    os.dup2(2, 1)  # a stray print must not corrupt the channel
    store = KnowledgeGraph.from_files(Path(asserted), Path(inferred)).store
    inspect_query("ASK {}")  # import rdflib's parser and build its grammar before the limits apply
    _cached_verdict.cache_clear()
    isolation = isolate(memory_bytes)
    if isolation["network"] != NETWORK_FILTERED and not allow_unconfined:
        outbox.send(("unconfined", isolation))  # fail closed: answer nothing
        return
    outbox.send(("ready", isolation))
    while True:
        try:
            message = inbox.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        reply = answer(store, message)
        outbox.send(reply)
        if reply[0] == "SparqlOutOfMemory":
            return  # a fresh worker replaces this one


UNCONFINED = (
    "SPARQL is disabled: its worker processes cannot be confined on this platform (no seccomp network filter, "
    "which needs Linux on x86-64 or AArch64); an operator who accepts SERVICE being refused by the parser "
    "alone can enable it with SPINEKG_SPARQL_ALLOW_UNCONFINED=true"
)


class _Unconfined(Exception):
    """The worker could not install its network filter and was not allowed to run without it."""


class _Worker:
    def __init__(self, files: tuple[str, str], memory_bytes: int, start_timeout: float, allow_unconfined: bool = False) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "spinekg.kg.sparql",
                *files,
                str(memory_bytes),
                "allow-unconfined" if allow_unconfined else "confined",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.send_conn = Connection(os.dup(self.process.stdin.fileno()))
        self.recv_conn = Connection(os.dup(self.process.stdout.fileno()))
        self.process.stdin.close()
        self.process.stdout.close()
        self.isolation: dict[str, Any] = {}
        try:
            if self.recv_conn.poll(start_timeout):
                status, payload = self.recv_conn.recv()
                if status == "ready":
                    self.isolation = dict(payload)
                    return
                if status == "unconfined":
                    self.kill()
                    raise _Unconfined(str(dict(payload).get("network_error", "unsupported platform")))
        except (EOFError, OSError, ValueError):
            pass
        self.kill()
        raise SparqlUnavailable("a SPARQL worker did not start; try again shortly")

    def ask(self, request: SparqlRequest) -> tuple[Any, ...]:
        """Send one query and wait for the answer within its time limit."""
        self.send_conn.send({k: getattr(request, k) for k in request.__dataclass_fields__})
        if not self.recv_conn.poll(request.timeout):
            raise SparqlTimeout(f"the query ran longer than {request.timeout:g} s and was stopped; add LIMIT or narrow it")
        reply: tuple[Any, ...] = self.recv_conn.recv()
        return reply

    def exit_code(self, wait: float) -> int | None:
        try:
            return self.process.wait(wait)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        for conn in (self.send_conn, self.recv_conn):
            conn.close()


class _WorkerLost(Exception):
    """The worker must be replaced; ``error`` is what the caller is told."""

    def __init__(self, error: SparqlError) -> None:
        super().__init__(str(error))
        self.error = error


OUT_OF_MEMORY = "the query ran out of memory (the limit of a SPARQL worker is {limit}); narrow it or add LIMIT"


@dataclass
class _Job:
    request: SparqlRequest
    future: concurrent.futures.Future[SparqlResult] = field(default_factory=concurrent.futures.Future)


class SparqlPool:
    """A few worker processes, each with its own copy of the store (the graph is small), each served by
    a dispatcher thread of the pool's own; callers wait on a future (``run`` blocks, ``run_async``
    awaits), never on a thread of the web server."""

    def __init__(self, asserted: Path, inferred: Path, workers: int = 2, config: SparqlPoolConfig | None = None) -> None:
        self.config = config or SparqlPoolConfig(workers=workers)
        self._files = (str(asserted), str(inferred))
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pending = 0
        self._capacity = max(1, self.config.workers) + max(0, self.config.queue_size)
        self._closed = False
        self._ready = threading.Event()
        self._workers: dict[int, _Worker] = {}
        self._isolation: dict[str, Any] = {}
        self._refusal: SparqlUnavailable | None = None  # set for good when workers cannot be confined
        self._threads = [
            threading.Thread(target=self._dispatch, args=(slot,), name=f"sparql-dispatch-{slot}", daemon=True)
            for slot in range(max(1, self.config.workers))
        ]
        for thread in self._threads:
            thread.start()

    # ------------------------------------------------------------ callers

    def submit(self, request: SparqlRequest) -> concurrent.futures.Future[SparqlResult]:
        """Queue a query; SparqlBusy at once when the queue is full."""
        with self._lock:
            if self._closed:
                raise SparqlUnavailable("the SPARQL endpoint is shutting down")
            if self._refusal is not None:
                raise SparqlUnavailable(str(self._refusal))
            if self._pending >= self._capacity:
                raise SparqlBusy(f"{self._pending} SPARQL queries are running or waiting, as many as this server takes; retry")
            self._pending += 1
        job = _Job(request)
        job.future.add_done_callback(self._release)
        self._jobs.put(job)
        return job.future

    def _release(self, _: concurrent.futures.Future[SparqlResult]) -> None:
        with self._lock:
            self._pending -= 1

    def _queue_wait(self, request: SparqlRequest) -> float:
        """How long a query may wait for a worker: one time limit (plus the first start of the pool)."""
        return request.timeout + (0.0 if self._ready.is_set() else self.config.start_timeout)

    def _busy(self, request: SparqlRequest) -> SparqlBusy:
        return SparqlBusy(f"every SPARQL worker stayed busy for {request.timeout:g} s; try again shortly")

    def run(self, request: SparqlRequest) -> SparqlResult:
        future = self.submit(request)
        try:
            return future.result(timeout=self._queue_wait(request))
        except concurrent.futures.TimeoutError:
            if future.cancel():
                raise self._busy(request) from None
            return future.result()

    async def run_async(self, request: SparqlRequest) -> SparqlResult:
        future = self.submit(request)
        waiting = asyncio.wrap_future(future)
        try:
            done, _ = await asyncio.wait({waiting}, timeout=self._queue_wait(request))
        except asyncio.CancelledError:
            future.cancel()  # the caller went away: drop the query if it has not started
            raise
        if not done and future.cancel():
            raise self._busy(request)
        return await waiting

    def isolation(self) -> dict[str, Any]:
        """What confines the workers (for a health check): parser, network filter, memory and limits."""
        with self._lock:
            ready = len(self._workers)
            report = dict(self._isolation)
        return {
            "workers": max(1, self.config.workers),
            "ready": ready,
            "queue_size": self.config.queue_size,
            "parser": "rdflib SPARQL 1.1 (updates and SERVICE refused)",
            **report,
        }

    # ------------------------------------------------------------ dispatchers

    def _start(self, slot: int) -> _Worker | None:
        try:
            worker = _Worker(self._files, self.config.memory_bytes, self.config.start_timeout, self.config.allow_unconfined)
        except _Unconfined as exc:
            with self._lock:
                first = self._refusal is None
                self._refusal = SparqlUnavailable(UNCONFINED)
                self._isolation = {"network": "none: SPARQL disabled", "network_error": str(exc)}
            if first:
                log.error("SPARQL is disabled: its workers cannot install the network filter (%s)", exc)
            self._ready.set()
            return None
        except (SparqlUnavailable, OSError) as exc:
            log.error("a SPARQL worker did not start: %s", exc)
            # fail one waiting query rather than let every caller wait for a worker that may never come
            with contextlib.suppress(queue.Empty):
                job = self._jobs.get(timeout=1.0)
                if job is None:
                    self._jobs.put(None)
                elif job.future.set_running_or_notify_cancel():
                    job.future.set_exception(SparqlUnavailable("no SPARQL worker could be started; try again shortly"))
            return None
        with self._lock:
            if self._closed:
                worker.kill()
                return None
            first = not self._isolation
            self._workers[slot] = worker
            self._isolation = worker.isolation
        if first and not str(worker.isolation.get("network", "")).startswith("seccomp"):
            log.warning(
                "SPARQL workers run without a network filter (%s), as SPINEKG_SPARQL_ALLOW_UNCONFINED allows; "
                "SERVICE is refused by the parser only",
                worker.isolation.get("network_error", "unsupported platform"),
            )
        self._ready.set()
        return worker

    def _dispatch(self, slot: int) -> None:
        worker: _Worker | None = None
        while True:
            if worker is None:
                if self._closed:
                    return
                if self._refusal is not None:  # no worker will ever be confined here: refuse what is queued
                    job = self._jobs.get()
                    if job is None:
                        return
                    if job.future.set_running_or_notify_cancel():
                        job.future.set_exception(SparqlUnavailable(str(self._refusal)))
                    continue
                worker = self._start(slot)
                continue
            job = self._jobs.get()
            if job is None:
                worker.kill()
                return
            if not job.future.set_running_or_notify_cancel():
                continue  # its caller stopped waiting
            try:
                job.future.set_result(self._ask(worker, job.request))
            except _WorkerLost as lost:
                with self._lock:
                    self._workers.pop(slot, None)
                worker.kill()
                worker = None
                job.future.set_exception(lost.error)
            except BaseException as exc:  # noqa: BLE001 - every failure goes to the caller
                job.future.set_exception(exc)

    def _out_of_memory(self) -> SparqlOutOfMemory:
        limit = self._isolation.get("memory_limit_bytes")
        return SparqlOutOfMemory(OUT_OF_MEMORY.format(limit=f"{limit / 2**20:,.0f} MiB" if limit else "the machine's memory"))

    def _ask(self, worker: _Worker, request: SparqlRequest) -> SparqlResult:
        try:
            reply = worker.ask(request)
        except SparqlTimeout as exc:
            raise _WorkerLost(exc) from None
        except (EOFError, OSError, ValueError):
            # The worker died: Rust aborts (SIGABRT) when an allocation fails under RLIMIT_AS, and the
            # kernel's OOM killer sends SIGKILL.
            code = worker.exit_code(2.0)
            if code in (-signal.SIGABRT, -signal.SIGKILL):
                raise _WorkerLost(self._out_of_memory()) from None
            raise _WorkerLost(SparqlUnavailable(f"the SPARQL worker stopped on this query (exit status {code})")) from None
        status, payload = reply[0], reply[1]
        if status == "ok":
            body, media_type, truncated, rows = payload
            return SparqlResult(body, media_type, truncated, rows)
        if status == "SparqlOutOfMemory":
            raise _WorkerLost(self._out_of_memory())
        error = _ERRORS.get(status, SparqlUnavailable)
        raise error(str(payload), reply[2] if len(reply) > 2 else None)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            workers = list(self._workers.values())
            self._workers.clear()
        for _ in self._threads:
            self._jobs.put(None)
        for worker in workers:  # a dispatcher waiting on its worker sees it die, then closes it
            with contextlib.suppress(OSError):
                worker.process.kill()
        for thread in self._threads:
            thread.join(5)
        while True:  # queries still queued get an answer
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None and job.future.set_running_or_notify_cancel():
                job.future.set_exception(SparqlUnavailable("the SPARQL endpoint is shutting down"))


if __name__ == "__main__":
    # Run the importable module's serve(), not this __main__ copy's, so that its classes are the ones
    # every other import sees.
    from spinekg.kg.sparql import serve as _serve

    _serve(
        sys.argv[1],
        sys.argv[2],
        int(sys.argv[3]) if len(sys.argv) > 3 else 0,
        len(sys.argv) > 4 and sys.argv[4] == "allow-unconfined",
    )
