"""One prefix table: every @prefix in ontology/ and every PREFIX in queries/ agrees with kg.namespaces."""

from __future__ import annotations

import re

import pytest

from spinekg.kg import paths
from spinekg.kg.namespaces import PREFIXES

FILES = sorted(paths.ontology_dir().rglob("*.ttl")) + sorted(paths.queries_dir().rglob("*.rq"))
DECLARATION = re.compile(r"^\s*(?:@prefix|PREFIX)\s+([A-Za-z][\w-]*):\s*<([^>]+)>", re.MULTILINE | re.IGNORECASE)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_prefixes_agree(path) -> None:
    declared = DECLARATION.findall(path.read_text(encoding="utf-8"))
    assert declared or path.suffix == ".rq", "a module declares its prefixes"
    for prefix, iri in declared:
        assert PREFIXES.get(prefix) == iri, f"{prefix}: is {iri} here but {PREFIXES.get(prefix)} in the table"
