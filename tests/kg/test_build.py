"""The reasoned graph is cached in a per-hash build folder, keyed by the ontology sources; a change rebuilds it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from spinekg.kg import paths
from spinekg.kg.build import build_graph, read_manifest, source_key


@pytest.fixture()
def project_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "checkout"
    shutil.copytree(paths.ontology_dir(), root / "ontology")
    shutil.copytree(paths.queries_dir(), root / "queries")
    monkeypatch.setenv("SPINEKG_DATA_DIR", str(root))
    monkeypatch.setenv("SPINEKG_BUILD_DIR", str(tmp_path / "build"))
    return root


@pytest.mark.slow
def test_build_is_cached_and_invalidated_by_a_source_change(project_copy: Path) -> None:
    first = build_graph()
    assert not first.cached and first.inferred_triples > 0
    assert read_manifest(first.asserted_path.parent)["key"] == first.key
    second = build_graph()
    assert second.cached and second.key == first.key
    inferred = sorted(first.inferred_path.read_text().splitlines())
    again = build_graph(force=True)
    assert sorted(again.inferred_path.read_text().splitlines()) == inferred, "reasoning is deterministic"
    assert (second.asserted_triples, second.inferred_triples) == (first.asserted_triples, first.inferred_triples)

    notes = project_copy / "ontology" / "edits" / "level-notes.ttl"
    notes.write_text(notes.read_text() + '\nnote:L6-transitional rdfs:comment "edited" .\n')
    assert source_key() != first.key
    third = build_graph()
    assert not third.cached and third.asserted_triples == first.asserted_triples + 1


def test_broken_turtle_is_one_clear_error(project_copy: Path) -> None:
    from spinekg.kg.errors import SpinekgError

    bad = project_copy / "ontology" / "modifiers.ttl"
    bad.write_text(bad.read_text() + '\nmod:XX rdfs:label "unterminated .\n')
    with pytest.raises(SpinekgError, match=r"modifiers.ttl: not valid Turtle"):
        build_graph()


def test_missing_java_is_one_clear_line(project_copy: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from spinekg.kg.cli import main

    monkeypatch.setenv("PATH", str(project_copy))  # a PATH with no java on it
    monkeypatch.delenv("JAVA_HOME", raising=False)
    assert main(["build", "--force"]) == 3
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Java was not found" in err and "Java runtime (11 or newer)" in err
