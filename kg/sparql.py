"""Read-only SPARQL for untrusted callers: refuse updates and SERVICE, and run each query in a worker
process under a time limit and a result-size limit, so that a runaway query is cut off (the worker
is killed and replaced) without harming other requests. Oxigraph cannot cancel a running query,
hence processes rather than threads."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from spinekg.kg.errors import SpinekgError

SELECT_FORMATS = {
    "application/sparql-results+json": "json",
    "application/json": "json",
    "application/sparql-results+xml": "xml",
    "application/xml": "xml",
    "text/csv": "csv",
    "text/tab-separated-values": "tsv",
}
GRAPH_FORMATS = {
    "text/turtle": "turtle",
    "application/n-triples": "ntriples",
    "application/ld+json": "jsonld",
    "application/rdf+xml": "rdfxml",
}
SHORT_NAMES = {
    "json": "application/sparql-results+json",
    "xml": "application/sparql-results+xml",
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "turtle": "text/turtle",
    "ttl": "text/turtle",
    "nt": "application/n-triples",
    "ntriples": "application/n-triples",
    "jsonld": "application/ld+json",
    "rdfxml": "application/rdf+xml",
}
UPDATE_KEYWORDS = re.compile(r"\b(INSERT|DELETE|LOAD|CLEAR|DROP|CREATE|ADD|MOVE|COPY|WITH)\b", re.IGNORECASE)
SERVICE_KEYWORD = re.compile(r"\bSERVICE\b", re.IGNORECASE)
# Strings, IRIs and comments are removed before looking for keywords (a literal may say "delete").
_NOISE = re.compile(r'"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|<[^<>"{}|^`\\\s]*>|#[^\n]*')


class SparqlRefused(SpinekgError):
    """The request is well formed but not allowed here (an update, SERVICE)."""


class SparqlSyntaxError(SpinekgError):
    """The query does not parse."""


class SparqlTimeout(SpinekgError):
    """The query ran past the time limit and was cut off."""


class SparqlBusy(SpinekgError):
    """No worker became free within the time limit."""


@dataclass
class SparqlResult:
    body: bytes
    media_type: str
    truncated: bool
    rows: int


def screen(query: str) -> None:
    """Refuse what a read-only endpoint must not run, before any worker sees it."""
    bare = _NOISE.sub(" ", query)
    if SERVICE_KEYWORD.search(bare):
        raise SparqlRefused("SERVICE is refused: this endpoint does not fetch other endpoints")
    head = re.sub(r"\b(PREFIX|BASE)\b\s+\S*\s*", " ", bare, flags=re.IGNORECASE).strip()
    match = UPDATE_KEYWORDS.match(head)
    if match and not re.match(r"\b(SELECT|CONSTRUCT|ASK|DESCRIBE)\b", head, re.IGNORECASE):
        raise SparqlRefused(f"{match.group(1).upper()} is refused: the SPARQL endpoint is read-only")


def negotiate(accept: str | None, form: str) -> str:
    """The media type to answer with, for a SELECT/ASK (``form`` "solutions") or CONSTRUCT/DESCRIBE ("graph")."""
    table = SELECT_FORMATS if form == "solutions" else GRAPH_FORMATS
    default = "application/sparql-results+json" if form == "solutions" else "text/turtle"
    if not accept:
        return default
    ranked = []
    for i, part in enumerate(accept.split(",")):
        media, _, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            k, _, v = p.strip().partition("=")
            if k == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        ranked.append((-q, i, media.strip().lower()))
    for _, _, media in sorted(ranked):
        if media in table:
            return media
        if media in ("*/*", "application/*", "text/*"):
            return default
    return ""


# ---------------------------------------------------------------- serialisation (runs in the worker)


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


def _term_xml(term: Any) -> str:
    import pyoxigraph as ox

    if isinstance(term, ox.NamedNode):
        return f"<uri>{escape(term.value)}</uri>"
    if isinstance(term, ox.BlankNode):
        return f"<bnode>{escape(term.value)}</bnode>"
    if isinstance(term, ox.Literal):
        if term.language:
            return f'<literal xml:lang="{escape(term.language)}">{escape(term.value)}</literal>'
        if term.datatype.value != "http://www.w3.org/2001/XMLSchema#string":
            return f'<literal datatype="{escape(term.datatype.value)}">{escape(term.value)}</literal>'
        return f"<literal>{escape(term.value)}</literal>"
    return f"<literal>{escape(str(term))}</literal>"


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
        head = "".join(f'<variable name="{escape(v)}"/>' for v in variables)
        results = "".join(
            "<result>"
            + "".join(
                f'<binding name="{escape(v)}">{_term_xml(t)}</binding>'
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


def execute(store: Any, query: str, accept: str | None, max_rows: int) -> SparqlResult:
    """Run one query on a store and serialise at most ``max_rows`` results (worker side)."""
    import pyoxigraph as ox

    try:
        result = store.query(query, use_default_graph_as_union=True)
    except SyntaxError as exc:
        raise SparqlSyntaxError(f"the query does not parse: {str(exc).splitlines()[0]}") from None
    if isinstance(result, ox.QueryBoolean):
        media = negotiate(accept, "solutions")
        if not media:
            raise SparqlRefused("not acceptable")
        return SparqlResult(serialize_boolean(bool(result), SELECT_FORMATS[media]), media, False, 1)
    if isinstance(result, ox.QuerySolutions):
        media = negotiate(accept, "solutions")
        if not media:
            raise SparqlRefused("not acceptable")
        variables = [v.value for v in result.variables]
        rows: list[list[Any]] = []
        truncated = False
        for solution in result:
            if len(rows) >= max_rows:
                truncated = True
                break
            rows.append([solution[v] for v in variables])
        return SparqlResult(serialize_solutions(variables, rows, SELECT_FORMATS[media]), media, truncated, len(rows))
    media = negotiate(accept, "graph")
    if not media:
        raise SparqlRefused("not acceptable")
    triples: list[Any] = []
    truncated = False
    for triple in result:
        if len(triples) >= max_rows:
            truncated = True
            break
        triples.append(triple)
    return SparqlResult(serialize_triples(triples, GRAPH_FORMATS[media]), media, truncated, len(triples))


# ---------------------------------------------------------------- worker processes
# Workers are plain subprocesses (python -m spinekg.kg.sparql ASSERTED INFERRED) talking over their stdin and
# stdout with multiprocessing's framed pickles: no dependence on how the parent was started.


def _serve(asserted: str, inferred: str) -> None:
    import os

    from spinekg.kg.graph import KnowledgeGraph

    store = KnowledgeGraph.from_files(Path(asserted), Path(inferred)).store
    inbox, outbox = Connection(os.dup(0)), Connection(os.dup(1))
    outbox.send(("ready", None))
    while True:
        try:
            request = inbox.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        query, accept, max_rows = request
        try:
            result = execute(store, query, accept, max_rows)
            # plain values: the worker runs as __main__, so its classes would not unpickle in the parent
            outbox.send(("ok", (result.body, result.media_type, result.truncated, result.rows)))
        except SpinekgError as exc:
            outbox.send((type(exc).__name__, str(exc)))
        except Exception as exc:  # noqa: BLE001 - an evaluation failure becomes a 400 with a short message
            outbox.send(("SparqlSyntaxError", f"the query failed: {type(exc).__name__}"))


class _Worker:
    def __init__(self, files: tuple[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "spinekg.kg.sparql", *files],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.send_conn = Connection(os.dup(self.process.stdin.fileno()))
        self.recv_conn = Connection(os.dup(self.process.stdout.fileno()))
        self.process.stdin.close()
        self.process.stdout.close()
        try:
            ready = self.recv_conn.poll(120) and self.recv_conn.recv()[0] == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            self.kill()
            raise SpinekgError("a SPARQL worker did not start")

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(5)
        for conn in (self.send_conn, self.recv_conn):
            conn.close()


class SparqlPool:
    """A few worker processes, each with its own copy of the store (the graph is small)."""

    def __init__(self, asserted: Path, inferred: Path, workers: int = 2) -> None:
        self._files = (str(asserted), str(inferred))
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._lock = threading.Lock()
        self._all: list[_Worker] = []
        for _ in range(max(1, workers)):
            self._add()

    def _add(self) -> None:
        worker = _Worker(self._files)
        with self._lock:
            self._all.append(worker)
        self._idle.put(worker)

    def run(self, query: str, accept: str | None, timeout: float, max_rows: int) -> SparqlResult:
        screen(query)
        deadline = time.monotonic() + timeout
        try:
            worker = self._idle.get(timeout=timeout)
        except queue.Empty:
            raise SparqlBusy(f"every SPARQL worker stayed busy for {timeout:g} s") from None
        try:
            worker.send_conn.send((query, accept, max_rows))
            if not worker.recv_conn.poll(max(0.0, deadline - time.monotonic())):
                raise SparqlTimeout(f"the query ran longer than {timeout:g} s and was stopped; add LIMIT or narrow it")
            status, payload = worker.recv_conn.recv()
        except SparqlTimeout:
            self._replace(worker)
            raise
        except (EOFError, OSError, BrokenPipeError):
            self._replace(worker)
            raise SpinekgError("the SPARQL worker failed") from None
        self._idle.put(worker)
        if status == "ok":
            body, media_type, truncated, rows = payload
            return SparqlResult(body, media_type, truncated, rows)
        error = {"SparqlRefused": SparqlRefused, "SparqlSyntaxError": SparqlSyntaxError}.get(status, SpinekgError)
        raise error(str(payload))

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._all.remove(worker)
        threading.Thread(target=self._add, daemon=True).start()

    def close(self) -> None:
        with self._lock:
            workers = list(self._all)
            self._all.clear()
        for worker in workers:
            with contextlib.suppress(OSError):
                worker.send_conn.send(None)
            worker.kill()


if __name__ == "__main__":
    _serve(sys.argv[1], sys.argv[2])
