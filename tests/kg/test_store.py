"""The build's on-disk store (kg/build.py, kg/graph.py): opened read-only, its fixed answers kept beside
it, and never removed while a process reads it."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pyoxigraph as ox
import pytest

from spinekg.kg import build as kg_build
from spinekg.kg.graph import KnowledgeGraph
from spinekg.kg.namespaces import ASSERTED_GRAPH

PAIRS = "SELECT ?s WHERE { ?s <https://w3id.org/spinekg/vocab/addOnFor> ?o } ORDER BY ?s"


def test_the_graph_is_the_build_s_read_only_store(graph: KnowledgeGraph) -> None:
    assert graph.build is not None and graph.build.store_path is not None
    assert graph.build.store_path.parent == graph.build.folder
    assert graph.build.store_path.name.startswith(kg_build.STORE_PREFIX)
    with pytest.raises((OSError, RuntimeError)):
        graph.store.add(ox.Quad(ox.NamedNode("urn:s"), ox.NamedNode("urn:p"), ox.NamedNode("urn:o"), ox.NamedNode("urn:g")))
    assert kg_build.in_use(graph.build.store_path), "this process holds the store it reads"


def test_fixed_answers_are_kept_and_read_back(graph: KnowledgeGraph, monkeypatch: pytest.MonkeyPatch) -> None:
    assert graph.answers is not None
    first = graph.select_fixed(PAIRS)
    assert first.rows and first.rows == graph.select(PAIRS).rows
    assert any(graph.answers.glob("*.srj")), "the answer is kept beside the store"

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a kept answer is read back, not asked again")

    monkeypatch.setattr(graph, "execute", refuse)
    again = graph.select_fixed(PAIRS)
    assert again.variables == first.variables and again.rows == first.rows


def test_a_graph_without_a_build_keeps_no_answers(graph: KnowledgeGraph) -> None:
    assert graph.build is not None
    memory = KnowledgeGraph.from_files(graph.build.asserted_path, graph.build.inferred_path)
    assert memory.answers is None
    assert memory.select_fixed(PAIRS).rows == graph.select(PAIRS).rows
    assert memory.count(ASSERTED_GRAPH) == graph.count(ASSERTED_GRAPH)


def test_a_held_store_is_in_use_until_released(tmp_path: Path) -> None:
    store = tmp_path / "store-abc"
    store.mkdir()
    assert not kg_build.in_use(store)
    held = kg_build.hold(store)
    assert held is not None and kg_build.in_use(store)
    held.close()
    assert not kg_build.in_use(store)


def _fake_build(parent: Path, name: str) -> Path:
    folder = parent / name
    (folder / f"{kg_build.STORE_PREFIX}1").mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"key": name, "store": f"{kg_build.STORE_PREFIX}1"}))
    return folder


def test_pruning_leaves_a_build_in_use(tmp_path: Path) -> None:
    """Only the newest few build folders are kept, but never one whose store a process still reads."""
    folders = [_fake_build(tmp_path, f"b{i}") for i in range(6)]
    held = kg_build.hold(folders[0] / f"{kg_build.STORE_PREFIX}1")  # the oldest, still read by a process
    for age, folder in zip(range(100, 94, -1), folders, strict=True):  # b5 is the newest
        stamp = time.time() - age
        os.utime(folder, (stamp, stamp))
    try:
        kg_build._prune(tmp_path, keep="b5")
    finally:
        assert held is not None
        held.close()
    kept = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert kept == ["b0", "b3", "b4", "b5"], "b0 is in use; of the others the newest KEEP_BUILDS - 1 stay beside b5"
