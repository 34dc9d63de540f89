"""What a user gets from `pip install`: the sdist and the wheel built from it carry the ontology, the
queries and the rules under the one import namespace `spinekg`; installed into a fresh virtual
environment, the wheel builds, answers a query, checks a claim and serves HTTP from a folder that is
not the checkout, and writes its build cache outside site-packages."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow
DATA_FOLDERS = ("ontology", "queries")


def _tracked(*folders: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", *folders], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return out.split()


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """sdist and wheel built from a copy of the tracked files (a fresh clone, without build outputs)."""
    work = tmp_path_factory.mktemp("dist")
    source = work / "source"
    for name in _tracked():
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, target)
    out = work / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(source)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return {"sdist": next(out.glob("*.tar.gz")), "wheel": next(out.glob("*.whl"))}


def test_wheel_holds_every_data_file_under_one_namespace(dist: dict[str, Path]) -> None:
    names = set(zipfile.ZipFile(dist["wheel"]).namelist())
    expected = {f"spinekg/{name}" for name in _tracked(*DATA_FOLDERS)}
    assert len(expected) > 50, "git lists the tracked ontology and query files"
    assert expected <= names, f"missing from the wheel: {sorted(expected - names)[:10]}"
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"spinekg"}, f"the wheel installs other top-level names: {tops}"
    assert "spinekg/kg/java/ExplainInconsistency.java" in names
    assert not any("/build/" in n or "__pycache__" in n for n in names)
    licence = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    assert licence, "the licence file travels in the wheel"


def test_sdist_holds_the_sources(dist: dict[str, Path]) -> None:
    with tarfile.open(dist["sdist"]) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    sources = set(_tracked(*DATA_FOLDERS, "kg", "api", "LICENSE", "README.md", "pyproject.toml"))
    assert {"README.md", "pyproject.toml", "kg/cli.py"} <= sources, "git lists the tracked sources"
    assert sources <= names


@pytest.fixture(scope="module")
def installed(dist: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """A fresh venv with the wheel (and its dependencies) installed, and an empty working folder."""
    root = tmp_path_factory.mktemp("installed")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    proc = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(dist["wheel"])], capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    work = root / "elsewhere"
    work.mkdir()
    yield {"venv": venv, "work": work, "home": root / "home"}


def _run(installed: dict[str, Path], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPINEKG_", "PYTHON", "VIRTUAL_ENV"))}
    env["SPINEKG_HOME"] = str(installed["home"])
    return subprocess.run(
        [str(installed["venv"] / "bin" / "spinekg"), *args],
        cwd=installed["work"],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_installed_wheel_builds_queries_and_checks_claims(installed: dict[str, Path]) -> None:
    version = _run(installed, "--version")
    assert version.returncode == 0 and version.stdout.startswith("spinekg ") and "unknown" not in version.stdout

    build = _run(installed, "build")
    assert build.returncode == 0, build.stderr
    site = next((installed["venv"] / "lib").glob("python*/site-packages"))
    assert not list((site / "spinekg").rglob("*.nt")), "the build cache must not be written into site-packages"
    assert list((installed["home"] / "cache" / "builds").glob("*/inferred.nt")), "the build lands in SPINEKG_HOME/cache"

    pairs = _run(installed, "query", "pairs-with", "-p", "code=22512", "-f", "json")
    assert pairs.returncode == 0, pairs.stderr
    assert {row["other_code"] for row in json.loads(pairs.stdout)} == {"22510", "22511"}

    claim = {"date_of_service": "2026-05-05", "lines": [{"code": "22512", "levels": ["L4"]}]}
    verdict = _run(installed, "validate", "-", stdin=json.dumps(claim))
    assert verdict.returncode == 1, verdict.stderr
    assert "addon-without-primary" in {f["rule"] for f in json.loads(verdict.stdout)["findings"]}
    assert not list(installed["work"].iterdir()), "nothing is written into the working folder"


def test_installed_wheel_serves_http(installed: dict[str, Path]) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPINEKG_", "PYTHON", "VIRTUAL_ENV"))}
    env["SPINEKG_HOME"] = str(installed["home"])
    process = subprocess.Popen(
        [str(installed["venv"] / "bin" / "spinekg"), "serve", "--port", str(port), "--log-level", "warning"],
        cwd=installed["work"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.stderr.read().decode()[-2000:] if process.stderr else ""
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                    health = json.load(response)
                    break
            except OSError:
                assert time.monotonic() < deadline, "the installed server did not answer /healthz"
                time.sleep(0.2)
        assert health["status"] == "ok" and health["rules"] > 0
        with urllib.request.urlopen(url + "/codes/22512/pairs", timeout=10) as response:
            assert {p["code"] for p in json.load(response)["pairs"]} == {"22510", "22511"}
        query = urllib.parse.urlencode({"query": "ASK { ?s ?p ?o }"})
        request = urllib.request.Request(f"{url}/sparql?{query}", headers={"Accept": "application/sparql-results+json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert json.load(response)["boolean"] is True
        with urllib.request.urlopen(url + "/docs", timeout=10) as response:
            assert response.status == 200
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
