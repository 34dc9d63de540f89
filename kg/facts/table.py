"""The named api queries over one graph, as JSON-ready rows, and the few conventions that turn a row
into the JSON of a page without renaming any column (the column names are the JSON names):

- a column aggregated with ``GROUP_CONCAT(…; separator=" | ")`` is a list (sorted in natural order,
  so S2 comes before S10 and T2 before T10);
- a double underscore nests: ``status__value`` is ``{"status": {"value": …}}``;
- in a section of a page about a subject (a code, a level), the subject's own columns are dropped
  (the page states them once) and ``other_x`` is the item's ``x`` (the other code of a pair).

Example, for ``SELECT ?code ?other_code (GROUP_CONCAT(?s; separator=" | ") AS ?sources) ?status__value``:
``{"code": "X0002", "other_code": "X0001", "sources": "S5 | S1", "status__value": "A"}`` becomes, in the
section of the page of X0002, ``{"code": "X0001", "sources": ["S1", "S5"], "status": {"value": "A"}}``
(X0001 and X0002 stand for any two codes).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

from spinekg.kg.graph import KnowledgeGraph
from spinekg.kg.queries import NamedQuery, discover, get_query

T = TypeVar("T")
Row = dict[str, Any]

LIST_SEPARATOR = " | "
NEST = "__"
OTHER = "other_"
_LIST_COLUMN = re.compile(
    r"GROUP_CONCAT\((?P<body>(?:[^()]|\([^()]*\))*)\)\s+AS\s+\?(?P<name>\w+)",
    re.IGNORECASE,
)
_SEPARATOR = re.compile(r'separator\s*=\s*"(?P<separator>[^"]*)"', re.IGNORECASE)


class Facts:
    """The named queries of queries/api/ over one read-only graph; answers are cached per query and
    parameters (and pages per key, through ``cached``). Values handed out are shared: never mutate them."""

    def __init__(self, graph: KnowledgeGraph, cache_size: int = 4096) -> None:
        self.graph = graph
        self._named = {q.name: q for q in discover("api")}
        self._lists: dict[str, frozenset[str]] = {}
        self._cache: OrderedDict[Any, Any] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def cached(self, key: Any, compute: Callable[[], T]) -> T:
        """``compute()``, remembered under ``key`` (least recently used entries go first)."""
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]  # type: ignore[no-any-return]
        value = compute()
        with self._lock:
            self._cache[key] = value
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return value

    def named_queries(self) -> list[NamedQuery]:
        return list(self._named.values())

    def named_query(self, name: str) -> NamedQuery:
        query = self._named.get(name)
        return query if query is not None else get_query(name, kinds=("api",))

    def table(self, name: str, params: Mapping[str, str] | None = None) -> tuple[list[str], list[Row]]:
        """Columns and JSON-ready rows of a named query, as the query returns them (GET /queries/{name})."""
        values = dict(params or {})
        query = self.named_query(name)

        def run() -> tuple[list[str], list[Row]]:
            result = query.run(self.graph, values)
            return result.variables, [jsonable(r) for r in result.values()]

        return self.cached(("table", name, tuple(sorted(values.items()))), run)

    def rows(self, name: str, params: Mapping[str, str] | None = None) -> list[Row]:
        """The rows of a named query shaped for JSON: list columns split, ``__`` columns nested."""
        values = dict(params or {})

        def run() -> list[Row]:
            lists = self.list_columns(name)
            return [shape(r, lists) for r in self.table(name, values)[1]]

        return self.cached(("rows", name, tuple(sorted(values.items()))), run)

    def list_columns(self, name: str) -> frozenset[str]:
        """The columns of a named query that are lists: aggregated with the list separator."""
        found = self._lists.get(name)
        if found is None:
            found = self._lists[name] = list_columns(self.named_query(name).text)
        return found


def list_columns(text: str) -> frozenset[str]:
    """The variables a query aggregates with ``GROUP_CONCAT(…; separator=" | ")``.

    >>> sorted(list_columns('SELECT (GROUP_CONCAT(DISTINCT ?s; separator=" | ") AS ?sources) '
    ...                     '(GROUP_CONCAT(?t; separator=" ") AS ?text) WHERE {}'))
    ['sources']
    """
    names = set()
    for match in _LIST_COLUMN.finditer(text):
        separator = _SEPARATOR.search(match.group("body"))
        if separator and separator.group("separator") == LIST_SEPARATOR:
            names.add(match.group("name"))
    return frozenset(names)


def natural_key(value: Any) -> tuple[Any, ...]:
    """Sort key that compares the digits in a text as numbers.

    >>> sorted(["S10", "S2", "S2-layout", "T12", "T2"], key=natural_key)
    ['S2', 'S2-layout', 'S10', 'T2', 'T12']
    """
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.findall(r"\d+|\D+", str(value)))


def shape(row: Mapping[str, Any], lists: Iterable[str] = ()) -> Row:
    """One row as JSON: list columns split and sorted, ``a__b`` columns nested under ``a``.

    >>> shape({"years": "2026 | 2025", "status__value": "A", "status__meaning": "active"}, lists=["years"])
    {'years': ['2025', '2026'], 'status': {'value': 'A', 'meaning': 'active'}}
    """
    list_names = frozenset(lists)
    out: Row = {}
    for key, value in row.items():
        if key in list_names:
            value = sorted(filter(None, str(value).split(LIST_SEPARATOR)), key=natural_key) if value else []
        *parents, leaf = key.split(NEST)
        target = out
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return out


def about(rows: Iterable[Mapping[str, Any]], subject: Mapping[str, Any]) -> list[Row]:
    """The rows of a section of ``subject``'s page: the subject's columns dropped, ``other_x`` as ``x``.

    >>> about([{"code": "X0002", "other_code": "X0001", "role": "primary"}], {"code": "X0002"})
    [{'code': 'X0001', 'role': 'primary'}]
    """
    return [{key.removeprefix(OTHER): value for key, value in row.items() if key not in subject} for row in rows]


def grouped(rows: Iterable[Mapping[str, Any]], by: str) -> dict[str, list[Row]]:
    """Rows grouped by the value of one column (dropped from the items), in the rows' order.

    >>> grouped([{"procedure": "augmentation", "code": "X0001"}], by="procedure")
    {'augmentation': [{'code': 'X0001'}]}
    """
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(str(row[by]), []).append({k: v for k, v in row.items() if k != by})
    return groups


def jsonable(row: Mapping[str, Any]) -> Row:
    """A query row with JSON values: decimals as numbers (whole ones as integers), dates as ISO text."""
    out = {}
    for key, value in row.items():
        if isinstance(value, Decimal):
            value = float(value) if value != value.to_integral_value() or "." in str(value) else int(value)
        elif hasattr(value, "isoformat"):
            value = value.isoformat()
        out[key] = value
    return out
