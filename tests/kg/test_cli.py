"""The command line, driven by tests/cases/cli.yaml; plus export round trips, the installed script,
and how it ends: a closed pipe, Ctrl-C, an address in use."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import uvicorn
from rdflib import BNode, Graph, URIRef

from spinekg.api.cli import main as spinekg_main
from spinekg.kg.cli import main
from spinekg.kg.namespaces import PREFIXES
from tests.conftest import FIXTURES, REPO, load_cases

CASES = load_cases("cli.yaml")


def _no_server(*args: object, **kwargs: object) -> None:
    raise AssertionError("the case was meant to fail before uvicorn starts")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["id"])
def test_cli(case: dict, capsys: pytest.CaptureFixture[str], graph, monkeypatch) -> None:
    """Each case through the `spinekg` entry point (kg's commands plus serve)."""
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(uvicorn, "run", _no_server)
    for name, value in (case.get("env") or {}).items():
        monkeypatch.setenv(name, value)
    status = spinekg_main(case["args"])
    out, err = capsys.readouterr()
    assert status == case["exit"], f"stdout={out[-500:]!r} stderr={err!r}"
    for text in case.get("stdout", []):
        assert text in out
    for text in case.get("stderr", []):
        assert text in err
    if status >= 2:
        assert len(err.strip().splitlines()) == 1, f"an error is one readable line: {err!r}"
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


def test_cases_cover_every_exit_status_and_the_serve_settings() -> None:
    assert {c["exit"] for c in CASES} >= {0, 1, 2, 3}
    assert any(c["args"][0] == "serve" and c.get("env") for c in CASES)


def test_kg_main_has_no_serve(capsys: pytest.CaptureFixture[str]) -> None:
    """kg's own parser stays free of FastAPI: serve comes from the api package."""
    assert main(["serve"]) == 2
    assert "invalid choice: 'serve'" in capsys.readouterr().err


def test_serve_help_names_every_setting(capsys: pytest.CaptureFixture[str]) -> None:
    from spinekg.api.settings import Settings

    with pytest.raises(SystemExit) as info:
        spinekg_main(["serve", "--help"])
    assert info.value.code == 0
    help_text = capsys.readouterr().out
    missing = [name for name in Settings.model_fields if f"SPINEKG_{name.upper()}=" not in help_text]
    assert not missing, f"spinekg serve --help does not name {missing}"
    for shown in ("SPINEKG_CORS_ORIGINS=*", "SPINEKG_CORS_CLAIMS_ORIGINS=\n", "SPINEKG_FORWARDED_ALLOW_IPS=\n", "status 2"):
        assert shown in help_text, shown


def test_exit_statuses_are_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    # each status opens a line of the "Exit status:" list ("0 " alone would be found inside "130 ...")
    block = out.split("Exit status:", 1)[1].split("positional arguments:", 1)[0]
    listed = re.findall(r"^  (\d+) ", block, re.MULTILINE)
    assert {"0", "1", "2", "3", "130"} <= set(listed), listed
    assert re.search(r"; 141 ", block), "141 shares the line of 130"


def test_serve_on_a_port_in_use_is_one_line(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    monkeypatch.setattr(uvicorn, "run", _no_server)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        status = spinekg_main(["serve", "--port", str(port)])
    err = capsys.readouterr().err
    assert status == 3
    assert err.strip() == f"spinekg: error: cannot listen on 127.0.0.1:{port}: Address already in use"


def _script() -> str:
    script = shutil.which("spinekg", path=os.path.dirname(sys.executable)) or shutil.which("spinekg")
    assert script, "pip install -e . installs the spinekg command"
    return script


@pytest.mark.parametrize(
    "args",
    [["export"], ["query", "all-triples.rq", "-f", "csv"]],
    ids=["export", "query"],
)
def test_closed_pipe_ends_quietly(args: list[str], tmp_path: Path) -> None:
    """`spinekg ... | head -1`: the reader goes away; no traceback, no "Exception ignored", status 141."""
    (tmp_path / "all-triples.rq").write_text("SELECT * WHERE { ?s ?p ?o }\n")
    proc = subprocess.Popen([_script(), *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline(), "the command started writing"
    proc.stdout.close()  # as head does after its line: the output is far larger than a pipe buffer
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert err == ""


def test_ctrl_c_ends_quietly() -> None:
    """Ctrl-C while `spinekg validate --batch -` waits for input: status 130 and nothing on stderr."""
    proc = subprocess.Popen(
        [_script(), "validate", "--batch", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    claim = json.loads((FIXTURES / "claims" / "e7-valid.json").read_text())
    proc.stdin.write(json.dumps(claim).encode() + b"\n")
    proc.stdin.flush()
    assert b'"valid"' in proc.stdout.readline(), "the first verdict came back: the command is in its loop"
    proc.send_signal(signal.SIGINT)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 130, err
    assert err == ""
    proc.stdin.close()
    proc.stdout.close()


@pytest.mark.parametrize(
    "error,line",
    [
        (ValueError("claim L4 of patient X"), "spinekg: internal error (ValueError); run again with SPINEKG_DEBUG=1"),
        (OSError(28, "No space left on device", "/srv/kg.ttl"), "spinekg: error: No space left on device (/srv/kg.ttl)"),
        (ModuleNotFoundError("No module named 'spinekg.api.middleware'"), "the installation is incomplete"),
    ],
    ids=["bug", "os-error", "missing-module"],
)
def test_unexpected_errors_are_one_line(
    error: Exception, line: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_: object) -> int:
        raise error

    monkeypatch.setattr("spinekg.kg.cli.cmd_rules", broken)
    assert main(["rules"]) == 3
    err = capsys.readouterr().err
    assert line in err and len(err.strip().splitlines()) == 1
    assert "patient" not in err, "the message of an unexpected error may hold the data; it is not shown"
    monkeypatch.setenv("SPINEKG_DEBUG", "1")
    with pytest.raises(type(error)):
        main(["rules"])
