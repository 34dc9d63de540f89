"""Run a named query against an external SPARQL 1.1 endpoint (Oxigraph's server, Virtuoso, or another
spinekg serve), for users who outgrow one process. Parameters travel as RDF terms in a VALUES block
at the start of the query's WHERE group, written in N-Triples syntax by pyoxigraph (escaped), so that
the same .rq files answer the same way remotely."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from spinekg.kg.errors import InputError, SpinekgError
from spinekg.kg.queries import NamedQuery

WHERE = re.compile(r"\bWHERE\s*\{", re.IGNORECASE)


def with_values(query: NamedQuery, values: Mapping[str, str]) -> str:
    bound = query.bindings(values)
    if not bound:
        return query.text
    names = [p.name for p in query.params]
    row = " ".join(str(bound[n]) if n in bound else "UNDEF" for n in names)
    block = f"VALUES ({' '.join('?' + n for n in names)}) {{ ({row}) }}"
    match = WHERE.search(query.text)
    if match is None:
        raise SpinekgError(f"query {query.name} has no WHERE group to bind parameters in")
    return query.text[: match.end()] + "\n  " + block + query.text[match.end() :]


def run_remote(
    query: NamedQuery, values: Mapping[str, str], endpoint: str, timeout: float = 60
) -> tuple[list[str], list[dict[str, Any]]]:
    if not re.match(r"https?://", endpoint):
        raise InputError("--endpoint", f"{endpoint!r} is not an http(s) URL")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        endpoint,
        data=with_values(query, values).encode(),
        method="POST",
        headers={"Content-Type": "application/sparql-query", "Accept": "application/sparql-results+json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - user-chosen endpoint
            data = json.load(response)
    except urllib.error.HTTPError as exc:
        raise SpinekgError(f"the endpoint answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError, ValueError) as exc:
        raise SpinekgError(f"cannot query {endpoint}: {getattr(exc, 'reason', exc)}") from None
    variables = list(data["head"]["vars"])
    rows = [{v: b[v]["value"] if v in b else None for v in variables} for b in data["results"]["bindings"]]
    return variables, rows
