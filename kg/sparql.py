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
  at ``max_rows`` and refuses one larger than ``max_bytes``; a worker's answer is read as a frame of
  bounded size (JSON header, raw body), never unpickled;
* the workers are driven from the server's event loop (pipe callbacks, no thread waits on a worker)
  behind a bounded queue: when it is full, or a query waited a whole time limit, the caller is told
  to come back (``SparqlBusy``) instead of holding a thread of the web server.

Oxigraph cannot cancel a running query, hence processes rather than threads."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import errno
import functools
import logging
import os
import platform
import re
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from xml.sax.saxutils import escape

import mimeparse
import orjson
import pyoxigraph as ox

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
ANSWER_TYPES = frozenset(SELECT_FORMATS) | frozenset(GRAPH_FORMATS)  # every media type a worker answers in


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
PLAN_CACHE_SIZE = 256
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


XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"


def _term_json(term: Any) -> dict[str, str]:
    kind = type(term)  # pyoxigraph's term classes cannot be subclassed
    if kind is ox.Literal:
        out = {"type": "literal", "value": term.value}
        if term.language:
            out["xml:lang"] = term.language
        else:
            datatype = term.datatype.value
            if datatype != XSD_STRING:
                out["datatype"] = datatype
        return out
    if kind is ox.NamedNode:
        return {"type": "uri", "value": term.value}
    if kind is ox.BlankNode:
        return {"type": "bnode", "value": term.value}
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


def _row_size(row: list[Any]) -> int:
    size = 0
    for term in row:
        if term is not None:
            value = getattr(term, "value", None)
            size += (len(value) if isinstance(value, str) else len(str(term))) + 40
    return size


def _too_large(max_bytes: int) -> SparqlTooLarge:
    return SparqlTooLarge(
        f"the result is larger than {max_bytes:,} bytes, the limit for one answer; add LIMIT or select fewer or shorter values"
    )


def dataset_arguments(request: SparqlRequest, shape: QueryShape) -> dict[str, Any]:
    """Store.query arguments for the SPARQL 1.1 Protocol dataset rules: default-graph-uri and
    named-graph-uri win over FROM / FROM NAMED in the query; with neither, the default graph is the
    union of the asserted and the inferred graph."""
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


@dataclass(frozen=True)
class _Plan:
    """What a request comes to before it runs: the canonical text, the answer's media type and the
    dataset arguments."""

    query: str
    media: str
    dataset: dict[str, Any]


def _plan(request: SparqlRequest) -> _Plan:
    query = canonical_query(request.query)  # the same text for rdflib and for Oxigraph
    shape = inspect_query(query)
    media = choose_media(FORMS[shape.form], request.accept, request.formats)
    return _Plan(query, media, dataset_arguments(request, shape))


@functools.lru_cache(maxsize=PLAN_CACHE_SIZE)
def _cached_plan(
    query: str, accept: str | None, formats: tuple[str, ...], default_graphs: tuple[str, ...], named_graphs: tuple[str, ...]
) -> _Plan:
    return _plan(SparqlRequest(query, accept, formats, default_graphs, named_graphs))


def plan_request(request: SparqlRequest) -> _Plan:
    """The request's plan, cached when what it depends on is short (clients send the same few requests
    over and over): at most PLAN_CACHE_SIZE x VERDICT_CACHE_LENGTH characters of keys."""
    parts = (request.query, request.accept, request.formats, request.default_graphs, request.named_graphs)
    size = (
        len(request.query)
        + len(request.accept or "")
        + sum(map(len, request.formats + request.default_graphs + request.named_graphs))
    )
    return _cached_plan(*parts) if size <= VERDICT_CACHE_LENGTH else _plan(request)


def execute(store: Any, request: SparqlRequest, check: bool = True) -> SparqlResult:
    """Read, run and serialise one query on a store (worker side). ``check=False`` skips the parser,
    for tests of what the worker's other defences do on their own."""
    if check:
        plan = plan_request(request)
    else:
        plan = _Plan(canonical_query(request.query), JSON_RESULTS, dataset_arguments(request, QueryShape("SELECT", False)))
    query, media = plan.query, plan.media
    try:
        result = store.query(query, **plan.dataset)
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
            row = list(solution)  # its values in the order of the variables, None where unbound
            budget -= _row_size(row)
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
# stdin and stdout in frames: two 32-bit lengths, then a JSON header (orjson) and raw bytes (the query
# text one way, the serialised answer the other). No pickle crosses the pipe: the parent never unpickles
# what a process that runs untrusted queries wrote, and nothing depends on how the parent was started.

_FRAME = struct.Struct("!II")  # header length, body length
# Before each request frame: the time (time.monotonic(), one clock for every process) after which the
# worker is not to start it but answer ["skipped"]; 0 for any time. See PIPELINE.
_START_BY = struct.Struct("!d")
MAX_HEAD_BYTES = 1 << 20  # the JSON header of a reply: a status and a message, or the isolation report
_READ_CHUNK = 1 << 18


def encode_frame(head: Any, body: bytes = b"") -> bytes:
    data = orjson.dumps(head)
    return _FRAME.pack(len(data), len(body)) + data + body


def encode_request(request: SparqlRequest) -> bytes:
    """The frame that carries a request to a worker (the time limit stays with the parent)."""
    head = [request.accept, request.formats, request.default_graphs, request.named_graphs, request.max_rows, request.max_bytes]
    try:
        return encode_frame(head, request.query.encode("utf-8", "surrogatepass"))
    except (TypeError, UnicodeEncodeError):  # orjson refuses an unpaired surrogate in a header or a graph name
        raise SparqlProtocolError("a parameter is not valid Unicode", "query") from None


def decode_request(head: Any, body: bytes) -> dict[str, Any]:
    accept, formats, default_graphs, named_graphs, max_rows, max_bytes = head
    return {
        "query": body.decode("utf-8", "surrogatepass"),
        "accept": accept,
        "formats": tuple(formats),
        "default_graphs": tuple(default_graphs),
        "named_graphs": tuple(named_graphs),
        "max_rows": max_rows,
        "max_bytes": max_bytes,
    }


class Inbox:
    """The worker's end of its request pipe, read in large chunks: the requests the pool has queued in
    the pipe come in with one read."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = bytearray()

    def _frame(self) -> tuple[float, Any, bytes] | None:
        begin = _START_BY.size
        if len(self.buffer) < begin + _FRAME.size:
            return None
        (start_by,) = _START_BY.unpack_from(self.buffer)
        head_size, body_size = _FRAME.unpack_from(self.buffer, begin)
        end = begin + _FRAME.size + head_size + body_size
        if len(self.buffer) < end:
            return None
        head = orjson.loads(memoryview(self.buffer)[begin + _FRAME.size : begin + _FRAME.size + head_size])
        body = bytes(self.buffer[begin + _FRAME.size + head_size : end])
        del self.buffer[:end]
        return start_by, head, body

    def wait(self) -> tuple[float, Any, bytes] | None:
        """The next request (start-by time, header, body), waiting for it; None when the pipe has ended."""
        frame = self._frame()
        while frame is None:
            chunk = os.read(self.fd, _READ_CHUNK)
            if not chunk:
                return None
            self.buffer += chunk
            frame = self._frame()
        return frame


SKIPPED = encode_frame(["skipped"])


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


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


def reply_frame(reply: tuple[Any, ...]) -> bytes:
    """An answer() reply as a frame: ["ok", media type, truncated, rows] and the body, or [class, message, field]."""
    if reply[0] == "ok":
        body, media_type, truncated, rows = reply[1]
        return encode_frame(["ok", media_type, truncated, rows], body)
    return encode_frame(list(reply))


def serve(asserted: str, inferred: str, memory_bytes: int, allow_unconfined: bool = False) -> None:
    from spinekg.kg.graph import build_store

    inbox, outbox = os.dup(0), os.dup(1)
    os.dup2(2, 1)  # a stray print must not corrupt the channel
    store = build_store(Path(asserted), Path(inferred))  # the build's read-only store, ICD-10-CM included
    inspect_query("ASK {}")  # import rdflib's parser and build its grammar before the limits apply
    _cached_verdict.cache_clear()
    isolation = isolate(memory_bytes)
    if isolation["network"] != NETWORK_FILTERED and not allow_unconfined:
        write_all(outbox, encode_frame(["unconfined", isolation]))  # fail closed: answer nothing
        return
    write_all(outbox, encode_frame(["ready", isolation]))
    requests = Inbox(inbox)
    while True:
        try:
            frame = requests.wait()
        except (OSError, ValueError):
            return
        if frame is None:
            return
        start_by, head, body = frame
        if start_by and time.monotonic() > start_by:  # the pool has given it to another worker by now
            write_all(outbox, SKIPPED)
            continue
        reply = answer(store, decode_request(head, body))
        # Each answer goes out at once. (Holding the answers to the queries queued in the pipe until it is
        # empty, to wake the server once for them all, halved the throughput over HTTP: measured.)
        write_all(outbox, reply_frame(reply))
        if reply[0] == "SparqlOutOfMemory":
            return  # a fresh worker replaces this one


UNCONFINED = (
    "SPARQL is disabled: its worker processes cannot be confined on this platform (no seccomp network filter, "
    "which needs Linux on x86-64 or AArch64); an operator who accepts SERVICE being refused by the parser "
    "alone can enable it with SPINEKG_SPARQL_ALLOW_UNCONFINED=true"
)
OUT_OF_MEMORY = "the query ran out of memory (the limit of a SPARQL worker is {limit}); narrow it or add LIMIT"


class _Unconfined(Exception):
    """The worker could not install its network filter and was not allowed to run without it."""


class _Broken(Exception):
    """A worker sent something that is not a reply frame, or more than a reply may hold."""


# How the pool hands queries to workers. On a busy core the server and the workers take turns, and each
# switch costs both their warm caches; so a worker answering quick queries is handed more before it has
# finished the current one (it reads the next from its pipe as soon as it is free) and answers them in one
# turn, and the server reads those answers in one turn too: at most PIPELINE queries per worker, and only
# while the one it runs has run less than PIPELINE_WHILE seconds (measured: 1,600 -> 1,900 req/s for
# pairs-with, bench/sparql_bench.py). Queries waiting in the pipe of a worker whose current query has run
# MOVE_AFTER seconds are given to another worker; the first one skips them (each carries the time after
# which it is not to be started) or, if it started one all the same, its answer is dropped. Those in the
# pipe of a worker that is stopped go back to the head of the queue: none of them had started.
PIPELINE = 16
PIPELINE_WHILE = 0.005
MOVE_AFTER = 0.02
TIMER_SLACK = 0.002  # a loop timer may fire this much early (uvloop counts in milliseconds)


@dataclass(eq=False)
class _Job:
    """One query on its way: waiting in the pool's queue, then in a worker's pipe, then running."""

    request: SparqlRequest
    frame: bytes
    future: asyncio.Future[tuple[list[Any], bytes]]
    deadline: float  # loop time after which, still waiting for a worker, it gives up (SparqlBusy)
    expiry: asyncio.TimerHandle | None = None
    sent: bool = False

    def ghost(self) -> _Job:
        """What stays in a worker's pipe when the query is moved to another worker: its answer is dropped."""
        dropped: asyncio.Future[tuple[list[Any], bytes]] = self.future.get_loop().create_future()
        dropped.cancel()
        return _Job(self.request, self.frame, dropped, self.deadline, sent=True)


class _Worker:
    """One worker process, driven from the pool's event loop: requests are written to its stdin without
    blocking, and answers read by a reader callback as they arrive; no thread waits on a worker."""

    def __init__(self, process: subprocess.Popen[bytes], slot: int, loop: asyncio.AbstractEventLoop, pool: SparqlPool) -> None:
        assert process.stdin is not None and process.stdout is not None
        self.process, self.slot, self.loop, self.pool = process, slot, loop, pool
        self.send_fd, self.recv_fd = process.stdin.fileno(), process.stdout.fileno()
        os.set_blocking(self.send_fd, False)
        os.set_blocking(self.recv_fd, False)
        self.buffer = bytearray()
        self.outbox = bytearray()  # requests not written yet
        self.writing = False  # waiting for the pipe to take the rest of the outbox
        self.hello: asyncio.Future[tuple[list[Any], bytes]] = loop.create_future()  # its first word: ready or not
        self.jobs: collections.deque[_Job] = collections.deque()  # sent and unanswered; the first is running
        self.started = 0.0  # loop time the running one started
        self.started_clock = 0.0  # the same, on time.monotonic()
        self.timer: asyncio.TimerHandle | None = None  # its time limit
        self.mover: asyncio.TimerHandle | None = None  # when the ones behind it move to another worker
        self.serving = False  # it has said it is ready and joined the pool
        self.gone = False
        self.isolation: dict[str, Any] = {}
        loop.add_reader(self.recv_fd, self._readable)

    def limit(self) -> int:
        """The largest body the next frame may carry."""
        return self.jobs[0].request.max_bytes if self.jobs else 0

    def push(self, job: _Job) -> None:
        job.sent = True
        self.jobs.append(job)
        start_by = 0.0
        if len(self.jobs) == 1:
            self.pool._begin(self)
        else:
            if self.mover is None:
                self.pool._watch(self)
            if self.mover is not None:  # it may be moved: if so, the worker should not run it as well
                start_by = self.started_clock + MOVE_AFTER
        self.outbox += _START_BY.pack(start_by)
        self.outbox += job.frame
        if not self.writing:
            self._writable()
            if self.outbox:  # a long query: the rest when the worker has read some
                self.writing = True
                self.loop.add_writer(self.send_fd, self._writable)

    def _writable(self) -> None:
        try:
            written = os.write(self.send_fd, self.outbox)
        except BlockingIOError:
            return
        except OSError:  # the worker is gone; its end of file on the other pipe says so
            written = len(self.outbox)
        del self.outbox[:written]
        if not self.outbox and self.writing:
            self.writing = False
            self.loop.remove_writer(self.send_fd)

    def _readable(self) -> None:
        try:
            data = os.read(self.recv_fd, _READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.pool._ended(self)
            return
        try:
            if not self.buffer and len(data) >= _FRAME.size:  # the usual case: one whole answer in one read
                head_size, body_size = _FRAME.unpack_from(data)
                if len(data) == _FRAME.size + head_size + body_size:
                    self._frame(head_size, body_size, data)
                    return
            self.buffer += data
            while len(self.buffer) >= _FRAME.size and not self.gone:
                head_size, body_size = _FRAME.unpack_from(self.buffer)
                self._check(head_size, body_size)
                end = _FRAME.size + head_size + body_size
                if len(self.buffer) < end:
                    return
                frame = bytes(self.buffer[:end])
                del self.buffer[:end]
                self._frame(head_size, body_size, frame)
        except (_Broken, orjson.JSONDecodeError):
            self.pool._retire(self, SparqlUnavailable("the SPARQL worker sent an unreadable answer"))

    def _check(self, head_size: int, body_size: int) -> None:
        if head_size > MAX_HEAD_BYTES or body_size > self.limit():
            raise _Broken

    def _frame(self, head_size: int, body_size: int, frame: bytes) -> None:
        self._check(head_size, body_size)
        head = orjson.loads(memoryview(frame)[_FRAME.size : _FRAME.size + head_size])
        if not isinstance(head, list) or not head:
            raise _Broken
        body = frame[_FRAME.size + head_size :]
        if not self.serving:
            if not self.hello.done():
                self.hello.set_result((head, body))
            return
        if not self.jobs:
            raise _Broken  # an answer nobody asked for
        self.pool._answered(self, head, body)

    def exit_code(self, wait: float) -> int | None:
        try:
            return self.process.wait(wait)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """Unhook the pipes from the loop and kill the process (reaped later, off the loop)."""
        if self.gone:
            return
        self.gone = True
        for timer in (self.timer, self.mover):
            if timer is not None:
                timer.cancel()
        self.timer = self.mover = None
        if not self.loop.is_closed():
            self.loop.remove_reader(self.recv_fd)
            if self.writing:
                self.loop.remove_writer(self.send_fd)
        with contextlib.suppress(OSError):
            self.process.kill()

    def close_pipes(self) -> None:
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


class SparqlPool:
    """A few worker processes, each with its own copy of the store (the graph is small), driven from one
    event loop (the server's: the first ``run_async`` binds it). Requests and answers travel as frames
    on the workers' pipes, read and written by loop callbacks: a query costs the server no thread and
    no hand-over between threads. Queries beyond what the workers take wait in a bounded queue; ``run``
    serves callers without an event loop (on the bound loop when it runs elsewhere, else on a loop
    thread of the pool's own)."""

    def __init__(self, asserted: Path, inferred: Path, workers: int = 2, config: SparqlPoolConfig | None = None) -> None:
        self.config = config or SparqlPoolConfig(workers=workers)
        self._files = (str(asserted), str(inferred))
        self._size = max(1, self.config.workers)
        self._capacity = self._size + max(0, self.config.queue_size)
        self._lock = threading.Lock()  # binding the loop, closing
        self._loop: asyncio.AbstractEventLoop | None = None
        self._own_loop: threading.Thread | None = None
        # Everything below is used on the bound loop only (isolation() reads two of them from anywhere).
        self._queue: collections.deque[_Job] = collections.deque()
        self._workers: dict[int, _Worker] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending = 0
        self._closed = False
        self._ready = False  # a worker has started (or been refused) once
        self._isolation: dict[str, Any] = {}
        self._refusal: SparqlUnavailable | None = None  # set for good when workers cannot be confined

    # ------------------------------------------------------------ callers

    async def run_async(self, request: SparqlRequest) -> SparqlResult:
        loop = asyncio.get_running_loop()
        home = self._home(loop)
        if home is not loop:  # another loop than the one the workers are driven from
            return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._run(request), home))
        return await self._run(request)

    def run(self, request: SparqlRequest) -> SparqlResult:
        """``run_async`` for a caller without an event loop; blocks."""
        if self._loop is not None and _runs_in(self._loop):
            raise RuntimeError("SparqlPool.run would block the loop that drives the workers; await run_async")
        home = self._home(None)
        return asyncio.run_coroutine_threadsafe(self._run(request), home).result()

    def isolation(self) -> dict[str, Any]:
        """What confines the workers (for a health check): parser, network filter, memory and limits."""
        return {
            "workers": self._size,
            "ready": len(self._workers),
            "queue_size": self.config.queue_size,
            "parser": "rdflib SPARQL 1.1 (updates and SERVICE refused)",
            **dict(self._isolation),
        }

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, own = self._loop, self._own_loop
        if loop is None:
            return
        if loop.is_closed():  # the loop that drove them has ended: only the processes are left to stop
            for worker in list(self._workers.values()):
                worker.stop()
                _reap(worker)
            return
        if loop.is_running() and not _runs_in(loop):
            done = threading.Event()

            def shut() -> None:
                try:
                    self._shutdown()
                finally:
                    done.set()

            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(shut)
                done.wait(10)
        else:
            self._shutdown()
        if own is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(loop.stop)
            own.join(5)

    # ------------------------------------------------------------ the loop the workers are driven from

    def _home(self, caller: asyncio.AbstractEventLoop | None) -> asyncio.AbstractEventLoop:
        """The loop that drives the workers; the caller's (or one of the pool's own, for ``run``) when the
        pool has none that runs yet."""
        with self._lock:
            if self._closed:
                raise SparqlUnavailable("the SPARQL endpoint is shutting down")
            loop = self._loop
            if loop is not None and not loop.is_closed() and (loop.is_running() or loop is caller):
                return loop
            if loop is not None:  # the loop that drove them has ended: start over on this one
                for worker in self._workers.values():
                    worker.stop()
                    worker.close_pipes()
                self._workers.clear()
                self._queue.clear()
                self._pending = 0
            if caller is None:
                caller = asyncio.new_event_loop()
                self._own_loop = threading.Thread(target=caller.run_forever, name="sparql-pool", daemon=True)
                self._own_loop.start()
            self._loop = caller
            caller.call_soon_threadsafe(self._launch)
            return caller

    def _launch(self) -> None:
        for slot in range(self._size):
            self._start(slot)

    def _task(self, coroutine: Coroutine[Any, Any, None]) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _start(self, slot: int) -> None:
        if not self._closed and self._refusal is None:
            self._task(self._starting_worker(slot))

    async def _starting_worker(self, slot: int) -> None:
        loop = asyncio.get_running_loop()
        while not self._closed and self._refusal is None:
            try:
                worker = await self._spawn(slot, loop)
            except _Unconfined as exc:
                self._refuse(str(exc))
                return
            except (SparqlUnavailable, OSError) as exc:
                log.error("a SPARQL worker did not start: %s", exc)
                # fail one waiting query rather than let every caller wait for a worker that may never come
                self._fail_queued(SparqlUnavailable("no SPARQL worker could be started; try again shortly"), 1)
                await asyncio.sleep(1.0)
                continue
            if self._closed:
                worker.stop()
                worker.close_pipes()
                return
            first = not self._isolation
            self._workers[slot] = worker
            self._isolation = worker.isolation
            if first and not str(worker.isolation.get("network", "")).startswith("seccomp"):
                log.warning(
                    "SPARQL workers run without a network filter (%s), as SPINEKG_SPARQL_ALLOW_UNCONFINED allows; "
                    "SERVICE is refused by the parser only",
                    worker.isolation.get("network_error", "unsupported platform"),
                )
            self._ready = True
            self._dispatch()
            return

    async def _spawn(self, slot: int, loop: asyncio.AbstractEventLoop) -> _Worker:
        command = [
            sys.executable,
            "-m",
            "spinekg.kg.sparql",
            *self._files,
            str(self.config.memory_bytes),
            "allow-unconfined" if self.config.allow_unconfined else "confined",
        ]
        process = await loop.run_in_executor(None, _popen, command)  # fork and exec off the loop
        worker = _Worker(process, slot, loop, self)
        try:
            head, _ = await asyncio.wait_for(worker.hello, self.config.start_timeout)
            status, payload = head[0], dict(head[1])
        except (TimeoutError, SparqlError, IndexError, TypeError, ValueError):
            status, payload = "", {}
        if status == "ready" and not worker.gone:
            worker.isolation = payload
            worker.serving = True
            return worker
        worker.stop()
        await loop.run_in_executor(None, worker.exit_code, 5.0)
        worker.close_pipes()
        if status == "unconfined":
            raise _Unconfined(str(payload.get("network_error", "unsupported platform")))
        raise SparqlUnavailable("a SPARQL worker did not start; try again shortly")

    def _refuse(self, reason: str) -> None:
        first = self._refusal is None
        self._refusal = SparqlUnavailable(UNCONFINED)
        self._isolation = {"network": "none: SPARQL disabled", "network_error": reason}
        self._ready = True
        if first:
            log.error("SPARQL is disabled: its workers cannot install the network filter (%s)", reason)
        self._fail_queued(SparqlUnavailable(UNCONFINED))

    # ------------------------------------------------------------ one query (on the loop)

    async def _run(self, request: SparqlRequest) -> SparqlResult:
        if self._closed:
            raise SparqlUnavailable("the SPARQL endpoint is shutting down")
        if self._refusal is not None:
            raise SparqlUnavailable(str(self._refusal))
        if self._pending >= self._capacity:
            raise SparqlBusy(f"{self._pending} SPARQL queries are running or waiting, as many as this server takes; retry")
        assert self._loop is not None
        # waiting for a worker may last one time limit (plus the first start of the pool)
        wait = request.timeout + (0.0 if self._ready else self.config.start_timeout)
        job = _Job(request, encode_request(request), self._loop.create_future(), self._loop.time() + wait)
        self._pending += 1
        try:
            self._queue.append(job)
            self._dispatch()
            if not job.sent:
                job.expiry = self._loop.call_at(job.deadline, self._expire, job)
            try:
                head, body = await job.future
            except asyncio.CancelledError:  # the caller went away: a query not yet sent never starts
                if not job.sent:
                    self._unqueue(job)
                raise
        finally:
            self._pending -= 1
        return self._result(head, body)

    def _result(self, head: list[Any], body: bytes) -> SparqlResult:
        """The answer a worker's frame holds. The media type becomes a response header, so it must be one
        of ours: a worker is trusted with no more than its own answer."""
        if head[0] == "ok":
            if len(head) != 4 or head[1] not in ANSWER_TYPES or not isinstance(head[3], int):
                raise SparqlUnavailable("the SPARQL worker sent an unreadable answer")
            return SparqlResult(body, head[1], bool(head[2]), head[3])
        if head[0] == "SparqlOutOfMemory":
            raise self._out_of_memory()
        error = _ERRORS.get(str(head[0]), SparqlUnavailable)
        raise error(str(head[1]) if len(head) > 1 else "", str(head[2]) if len(head) > 2 else None)

    def _dispatch(self) -> None:
        """Hand queued queries to workers: first to a worker answering quick queries with room in its
        pipe, else to an idle one (the lowest slot: the same one while the load is light)."""
        while self._queue:
            worker = self._choose()
            if worker is None:
                return
            job = self._queue.popleft()
            if job.future.done():  # expired, or its caller went away
                continue
            if job.expiry is not None:
                job.expiry.cancel()
                job.expiry = None
            worker.push(job)

    def _choose(self) -> _Worker | None:
        assert self._loop is not None
        now, idle = self._loop.time(), None
        for worker in self._workers.values():
            if worker.gone:
                continue
            if not worker.jobs:
                if idle is None or worker.slot < idle.slot:
                    idle = worker
            elif len(worker.jobs) < PIPELINE and now - worker.started < PIPELINE_WHILE and not worker.writing:
                return worker
        return idle

    def _expire(self, job: _Job) -> None:
        job.expiry = None
        if not job.future.done():
            timeout = job.request.timeout
            job.future.set_exception(SparqlBusy(f"every SPARQL worker stayed busy for {timeout:g} s; try again shortly"))
        self._unqueue(job)

    def _unqueue(self, job: _Job) -> None:
        if job.expiry is not None:
            job.expiry.cancel()
            job.expiry = None
        with contextlib.suppress(ValueError):
            self._queue.remove(job)

    def _fail_queued(self, error: SparqlError, count: int | None = None) -> None:
        while self._queue and count != 0:
            job = self._queue.popleft()
            self._unqueue(job)
            if not job.future.done():
                job.future.set_exception(error)
                count = None if count is None else count - 1

    def _requeue(self, jobs: list[_Job]) -> None:
        """Queries that were in a stopped worker's pipe, never started: back to the head of the queue."""
        assert self._loop is not None
        for job in reversed(jobs):
            if job.future.done():
                continue
            job.sent = False
            if self._loop.time() >= job.deadline:
                self._expire(job)
                continue
            self._queue.appendleft(job)
            job.expiry = self._loop.call_at(job.deadline, self._expire, job)

    # ------------------------------------------------------------ what workers do (loop callbacks)

    # A worker's two timers are set for the query it runs and left set when it answers (quick queries
    # follow one another far faster than either comes due): each checks, when it fires, whether the query
    # running then is the one it is about, and sets itself again for that one if not.

    def _begin(self, worker: _Worker) -> None:
        """The first query in a worker's pipe is running from now: its time limit starts."""
        assert self._loop is not None
        worker.started, worker.started_clock = self._loop.time(), time.monotonic()
        due = worker.started + worker.jobs[0].request.timeout
        if worker.timer is not None and worker.timer.when() > due:  # set for a query with a longer limit
            worker.timer.cancel()
            worker.timer = None
        if worker.timer is None:
            worker.timer = self._loop.call_at(due, self._time_limit, worker)

    def _time_limit(self, worker: _Worker) -> None:
        worker.timer = None
        if not worker.jobs or worker.gone:
            return
        assert self._loop is not None
        timeout = worker.jobs[0].request.timeout
        due = worker.started + timeout
        if self._loop.time() < due - TIMER_SLACK:
            worker.timer = self._loop.call_at(due, self._time_limit, worker)
            return
        self._retire(worker, SparqlTimeout(f"the query ran longer than {timeout:g} s and was stopped; add LIMIT or narrow it"))

    def _watch(self, worker: _Worker) -> None:
        """Queries wait behind the running one: move them elsewhere if it runs MOVE_AFTER seconds."""
        assert self._loop is not None
        if worker.mover is None and len(self._workers) > 1:
            worker.mover = self._loop.call_at(worker.started + MOVE_AFTER, self._move, worker)

    def _move(self, worker: _Worker) -> None:
        worker.mover = None
        if worker.gone or len(worker.jobs) < 2:
            return
        assert self._loop is not None
        due = worker.started + MOVE_AFTER
        if self._loop.time() < due - TIMER_SLACK:
            worker.mover = self._loop.call_at(due, self._move, worker)
            return
        running, *waiting = worker.jobs
        moving = [job for job in waiting if not job.future.done()]
        if moving:
            worker.jobs = collections.deque([running, *(job if job.future.done() else job.ghost() for job in waiting)])
            self._requeue(moving)
            self._dispatch()

    def _answered(self, worker: _Worker, head: list[Any], body: bytes) -> None:
        job = worker.jobs.popleft()
        if head[0] == "skipped":  # not started: moved to another worker, or to be moved now
            if not job.future.done():
                self._requeue([job])
        elif not job.future.done():  # else its caller went away: the worker goes on all the same
            job.future.set_result((head, body))
        if head[0] == "SparqlOutOfMemory":
            self._retire(worker, None)  # it exits after this answer; a fresh worker replaces it
            return
        if worker.jobs:
            self._begin(worker)
            if len(worker.jobs) > 1:
                self._watch(worker)
        self._dispatch()

    def _ended(self, worker: _Worker) -> None:
        """End of file from a worker: it died. Rust aborts (SIGABRT) when an allocation fails under
        RLIMIT_AS, and the kernel's OOM killer sends SIGKILL; the exit status is read off the loop."""
        if not worker.serving:
            worker.stop()
            if not worker.hello.done():
                worker.hello.set_exception(SparqlUnavailable("a SPARQL worker did not start; try again shortly"))
            return
        running = worker.jobs[0] if worker.jobs else None
        self._retire(worker, None)
        if running is None or running.future.done():
            return

        async def report(job: _Job) -> None:
            assert self._loop is not None
            code = await self._loop.run_in_executor(None, worker.exit_code, 2.0)
            if not job.future.done():
                if code in (-signal.SIGABRT, -signal.SIGKILL):
                    job.future.set_exception(self._out_of_memory())
                else:
                    job.future.set_exception(SparqlUnavailable(f"the SPARQL worker stopped on this query (exit status {code})"))

        self._task(report(running))

    def _retire(self, worker: _Worker, error: SparqlError | None) -> None:
        """Stop a worker, fail the query it was running with ``error`` (None: the caller is told
        elsewhere), put the ones behind it back in the queue, start its replacement."""
        if worker.gone:
            return
        worker.stop()
        if not worker.serving:
            if not worker.hello.done():
                worker.hello.set_exception(error or SparqlUnavailable("a SPARQL worker did not start; try again shortly"))
            return  # _spawn reaps it and tries again
        jobs = list(worker.jobs)
        worker.jobs.clear()
        if jobs and error is not None and not jobs[0].future.done():
            jobs[0].future.set_exception(error)
        if self._workers.get(worker.slot) is worker:
            del self._workers[worker.slot]
        assert self._loop is not None
        self._loop.run_in_executor(None, _reap, worker)
        self._requeue(jobs[1:])
        self._start(worker.slot)
        self._dispatch()

    def _out_of_memory(self) -> SparqlOutOfMemory:
        limit = self._isolation.get("memory_limit_bytes")
        return SparqlOutOfMemory(OUT_OF_MEMORY.format(limit=f"{limit / 2**20:,.0f} MiB" if limit else "the machine's memory"))

    def _shutdown(self) -> None:
        """Stop every worker and answer whatever waits (on the loop that drives them)."""
        for task in list(self._tasks):
            task.cancel()
        workers = list(self._workers.values())
        self._workers.clear()
        closing = SparqlUnavailable("the SPARQL endpoint is shutting down")
        for worker in workers:
            worker.stop()
            for job in worker.jobs:
                if not job.future.done():
                    job.future.set_exception(closing)
            worker.jobs.clear()
        self._fail_queued(closing)
        for worker in workers:
            _reap(worker)


def _popen(command: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def _reap(worker: _Worker) -> None:
    """Collect a killed worker's exit status and close its pipes (blocks: run off the loop)."""
    worker.exit_code(5.0)
    worker.close_pipes()


def _runs_in(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


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
