"""The command line, driven by tests/cases/cli.yaml; plus export round trips and the installed script."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rdflib import BNode, Graph, URIRef

from spinekg.kg.cli import main
from spinekg.kg.namespaces import PREFIXES
from tests.conftest import REPO, load_cases


@pytest.mark.parametrize("case", load_cases("cli.yaml"), ids=lambda c: c["id"])
def test_cli(case: dict, capsys: pytest.CaptureFixture[str], graph, monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    status = main(case["args"])
    out, err = capsys.readouterr()
    assert status == case["exit"], f"stdout={out[-500:]!r} stderr={err!r}"
    for text in case.get("stdout", []):
        assert text in out
    for text in case.get("stderr", []):
        assert text in err
    if status == 2:
        assert len(err.strip().splitlines()) == 1, "an input error is one readable line"
        assert "Traceback" not in err


@pytest.mark.parametrize("fmt,parser", [("ttl", "turtle"), ("owl", "xml")])
def test_export_is_one_merged_graph(tmp_path: Path, fmt: str, parser: str, graph) -> None:
    out = tmp_path / f"spinekg.{fmt}"
    assert main(["export", "--format", fmt, "--output", str(out)]) == 0
    merged = Graph().parse(out, format=parser)
    owl = "http://www.w3.org/2002/07/owl#"
    rdf_type = URIRef("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
    assert not list(merged.triples((None, URIRef(owl + "imports"), None))), "a merged file has no imports"
    assert list(merged.subjects(rdf_type, URIRef(owl + "Ontology"))) == [URIRef("https://w3id.org/spinekg/ontology")]
    inferred = Graph().parse(graph.build.inferred_path, format="nt")
    assert all(t in merged for t in inferred if not any(isinstance(x, BNode) for x in t))
    asserted = Graph().parse(graph.build.asserted_path, format="nt")
    codes = [t for t in asserted if str(t[0]).startswith(PREFIXES["cpt"])]
    assert codes and all(t in merged for t in codes)
    inferred_pair = (
        URIRef(PREFIXES["cpt"] + "22512"),
        URIRef(PREFIXES["skg"] + "addOnFor"),
        URIRef(PREFIXES["cpt"] + "22510"),
    )
    assert inferred_pair in merged


def test_installed_console_script() -> None:
    script = shutil.which("spinekg", path=os.path.dirname(sys.executable)) or shutil.which("spinekg")
    assert script, "pip install -e . installs the spinekg command"
    proc = subprocess.run(
        [script, "query", "pairs-with", "--param", "code=22512"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "22510" in proc.stdout and "22511" in proc.stdout
