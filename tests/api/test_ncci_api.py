"""The NCCI routes and their CLI twins against the fixture tables (tests/cases/ncci-api.yaml): the same
JSON from both; a 404 naming the missing table when nothing is imported."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from pydantic import BaseModel

from spinekg.api.cli import main as spinekg_main
from spinekg.api.main import create_app
from spinekg.api.schemas import NcciEdits, NcciMue, NcciPrimaries
from spinekg.kg.graph import KnowledgeGraph
from spinekg.kg.ncci import import_ncci
from tests.api.conftest import TEST_SETTINGS
from tests.api.test_api import lookup
from tests.conftest import CASES, REPO

FIXTURES = REPO / "tests" / "fixtures" / "ncci"
MODELS: dict[str, type[BaseModel]] = {"edits": NcciEdits, "mue": NcciMue, "primaries": NcciPrimaries}
NCCI_API_CASES: list[dict[str, Any]] = yaml.safe_load((CASES / "ncci-api.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def ncci_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.mktemp("ncci-api") / "cache"
    files = [
        *sorted(FIXTURES.glob("ccipra-v321r0-f*.TXT")),
        FIXTURES / "ccioph-v321r0-f1.TXT",
        FIXTURES / "MCR_MUE_PractitionerServices_Eff_04-01-2026.csv",
        FIXTURES / "AOC_V2026Q2-MCR.txt",
    ]
    import_ncci(files, cache=cache)
    return cache / "ncci"


@pytest.fixture(scope="module")
def ncci_client(graph: KnowledgeGraph, ncci_dir: Path) -> Iterator[TestClient]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPINEKG_NCCI_DIR", str(ncci_dir))
        with TestClient(create_app(TEST_SETTINGS, graph=graph)) as client:
            yield client


def _check(body: Any, expected: dict[str, Any]) -> None:
    for path, value in expected.items():
        found = lookup(body, path.split("."))
        if isinstance(value, list) and "*" in path:
            flat = [x for v in found for x in (v if isinstance(v, list) else [v])]
            assert all(v in flat for v in value), f"{path}: {found}"
        else:
            assert found == [value], f"{path}: {found}"


@pytest.mark.parametrize("case", NCCI_API_CASES, ids=[c["id"] for c in NCCI_API_CASES])
def test_ncci_route(ncci_client: TestClient, case: dict[str, Any]) -> None:
    response = ncci_client.get(case["get"])
    assert response.status_code == case["status"], response.text
    _check(response.json(), case.get("has") or {})
    if response.status_code == 200:  # the answer is what its documented model says, no more
        model = MODELS[case["get"].split("?")[0].rsplit("/", 1)[1]]
        assert model.model_validate(response.json()).model_dump(mode="json") == response.json()


@pytest.mark.parametrize("case", [c for c in NCCI_API_CASES if "cli" in c], ids=lambda c: c["id"])
def test_ncci_cli_gives_the_same_json(
    ncci_client: TestClient,
    ncci_dir: Path,
    case: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SPINEKG_NCCI_DIR", str(ncci_dir))
    status = spinekg_main(case["cli"])
    out, err = capsys.readouterr()
    if case["status"] == 200:
        assert status == 0, err
        assert json.loads(out) == ncci_client.get(case["get"]).json()
    else:
        assert status == case["exit"] and err.count("\n") == 1 and case["has"]["field"] in err


def test_without_tables_the_routes_say_what_to_import(
    graph: KnowledgeGraph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing imported: our codes' edits come from the ontology's generated rows; any other code's
    edits (and every MUE) are a 404 that says what to import."""
    monkeypatch.setenv("SPINEKG_NCCI_DIR", str(tmp_path))
    with TestClient(create_app(TEST_SETTINGS, graph=graph)) as client:
        ours = client.get("/codes/22513/edits", params={"with": "22510", "on": "2026-05-05"})
        theirs = client.get("/codes/99213/edits")
        mue = client.get("/codes/22510/mue")
    assert ours.status_code == 200 and ours.json()["origin"] == "ontology"
    assert [(e["column1"], e["column2"], e["modifier_indicator"]) for e in ours.json()["edits"]] == [("22513", "22510", 1)]
    for response in (theirs, mue):
        assert response.status_code == 404
        assert "spinekg import ncci" in response.json()["detail"]
