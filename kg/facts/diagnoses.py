"""Diagnoses: the page of an ICD-10-CM code (GET /diagnoses/{code}, ``spinekg diagnosis CODE``): its
title, whether it is billable, its ancestors up to the chapter, its children, the loaded releases that
hold it, and where it is listed. Read from the build's ICD-10-CM index (kg/icd10); the same JSON from
the API and the command line.

``listed_in`` is the hook for where a code is listed (the coverage articles' ICD-10-CM groups): it runs
the named query ``diagnosis-listed-in`` (queries/api/) with the parameters ``code`` (the dotted code)
and ``on`` (a date, or empty), when such a query exists, so the coverage model adds it as data and
this page shows it; until then the list is empty."""

from __future__ import annotations

from datetime import date
from typing import Any

from spinekg.kg.errors import InputError, SpinekgError
from spinekg.kg.facts.codes import UnknownCodeError
from spinekg.kg.facts.table import Facts, Row, about
from spinekg.kg.icd10 import CodeSet, Diagnosis, code_set, is_shaped, normalize
from spinekg.kg.icd10.store import MAX_CHILDREN

LISTED_IN_QUERY = "diagnosis-listed-in"
SHAPE_HINT = "a letter, two letters or digits, then up to four letters or digits after an optional dot, e.g. M80.08XA"


class UnknownDiagnosisError(UnknownCodeError):
    """A well-shaped code that the release asked about does not hold (404 with the closest codes)."""

    def __init__(self, code: str, closest: list[str], release: str) -> None:
        hint = f"; did you mean {', '.join(closest)}?" if closest else ""
        InputError.__init__(self, "code", f"{code!r} is not an ICD-10-CM code of the {release}{hint}")
        self.code = code
        self.closest = closest


class ReleaseNotLoaded(InputError):
    """No loaded ICD-10-CM release is in force on the date asked about (404 naming ``on``; exit 2)."""


def codes_of(facts: Facts) -> CodeSet:
    build = facts.graph.build
    if build is None:
        raise SpinekgError("the ICD-10-CM code set needs a graph loaded from a build (spinekg build)")
    return code_set(build.folder)


def parse_on(value: str | None) -> date | None:
    """The date of service a question is about (YYYY-MM-DD), or None for the latest loaded release."""
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError("on", f"{value[:20]!r} is not a date; use YYYY-MM-DD") from None


def diagnosis_page(facts: Facts, code: str, on: date | None = None) -> dict[str, Any]:
    """The page of a code (with or without the dot, any case); InputError for a string not shaped like
    one, UnknownDiagnosisError (with the closest codes) for a code the release does not hold,
    ReleaseNotLoaded when no loaded release is in force on ``on``."""
    if not isinstance(code, str) or not is_shaped(code):
        raise InputError("code", f"{str(code)[:20]!r} is not shaped like an ICD-10-CM code ({SHAPE_HINT})")
    value = normalize(code)
    return facts.cached(("diagnosis-page", value, on), lambda: _assemble(facts, value, on))


def _assemble(facts: Facts, code: str, on: date | None) -> dict[str, Any]:
    codes = codes_of(facts)
    release = codes.release_on(on) if on is not None else codes.latest
    if release is None:
        loaded = ", ".join(f"{r.label} ({r.effective} to {r.until or 'now'})" for r in codes.releases)
        raise ReleaseNotLoaded("on", f"the ICD-10-CM release in force on {on} is not loaded (loaded: {loaded})")
    found = codes.lookup(code, on=on)
    if found is None:
        raise UnknownDiagnosisError(code, list(codes.one_edit_codes(code)), release.label)
    page: dict[str, Any] = {
        "code": found.code,
        "iri": found.iri,
        "title": found.title,
        "billable": found.billable,
        "kind": found.kind,
        "release": _release(codes, release.id),
        "ancestors": [_brief(codes, a, on) for a in found.ancestors],
        "children_count": found.children,
        "children": [_brief(codes, c, on) for c in codes.children(found.code)],
        "children_truncated": found.children > MAX_CHILDREN,
        "billable_examples": [] if found.billable else list(codes.nearest_billable(found.code, 5)),
        "releases": [_release(codes, r) for r in found.releases],
        "listed_in": listed_in(facts, found, on),
    }
    return page


def _brief(codes: CodeSet, code: str, on: date | None) -> dict[str, Any]:
    item = codes.lookup(code, on=on)
    if item is None:  # an ancestor or child of a code of this release is in it too
        return {"code": code}
    return {"code": item.code, "title": item.title, "billable": item.billable, "kind": item.kind}


def _release(codes: CodeSet, release_id: str) -> dict[str, Any]:
    for r in codes.releases:
        if r.id == release_id:
            return {
                "id": r.id,
                "label": r.label,
                "effective": r.effective.isoformat(),
                "until": r.until.isoformat() if r.until else None,
                "source": r.source,
                "data": r.package,
            }
    return {"id": release_id}


def listed_in(facts: Facts, diagnosis: Diagnosis, on: date | None) -> list[Row]:
    """Where the code is listed: the rows of the named query ``diagnosis-listed-in`` (parameters
    ``code`` and ``on``) when the coverage model provides it; else none."""
    if LISTED_IN_QUERY not in {q.name for q in facts.named_queries()}:
        return []
    query = facts.named_query(LISTED_IN_QUERY)
    params = {"code": diagnosis.code}
    if on is not None and any(p.name == "on" for p in query.params):
        params["on"] = on.isoformat()
    # the page states the code and the date once: the query's parameter columns are dropped from its rows
    return about(facts.rows(LISTED_IN_QUERY, params), {p.name: None for p in query.params})


def diagnosis_text(page: dict[str, Any]) -> str:
    """The page laid out for a terminal."""
    out = [f"{page['code']}  {page['title']}"]
    release = page["release"]
    state = "billable (valid for submission)" if page["billable"] else f"not billable: a {page['kind']} header"
    out.append(f"  {state} in the {release['label']} ({release['effective']} to {release['until'] or 'now'})")
    if page["billable_examples"]:
        out.append(f"  report a code such as {', '.join(page['billable_examples'])}")
    if page["ancestors"]:
        out.append("  ancestors (nearest first):")
        out.extend(f"    {a['code']:<10} {a.get('title', '')}" for a in page["ancestors"])
    if page["children"]:
        out.append(f"  children ({page['children_count']}):")
        out.extend(
            f"    {c['code']:<10} {c.get('title', '')}{'' if c.get('billable') else '  [header]'}" for c in page["children"]
        )
    listed = page["listed_in"]
    out.append(f"  listed in: {len(listed)} coverage group(s)" if listed else "  listed in: no coverage list known here")
    out.append(f"  source: {release.get('source', '')} ({release.get('data', '')})")
    return "\n".join(out)
