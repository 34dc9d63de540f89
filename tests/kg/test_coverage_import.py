"""spinekg import coverage (kg/coverage): the MCD article download (CSV, a zip inside a zip) and Coverage API
responses (JSON), from the invented fixtures of tests/fixtures/coverage/ (README there), into stores of
the tests' own; what the claim rules then say, with imported rows superseding the typed facts."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from spinekg.kg.claims import ClaimValidator
from spinekg.kg.coverage import importer as importer_module
from spinekg.kg.coverage.importer import Scope, import_coverage
from spinekg.kg.coverage.reader import CoverageFileError
from spinekg.kg.coverage.scope import scope_from_graph
from spinekg.kg.coverage.store import CoverageStore, load_coverage
from spinekg.kg.errors import InputError
from spinekg.kg.graph import KnowledgeGraph
from tests.conftest import FIXTURES

COVERAGE = FIXTURES / "coverage"
MCD = sorted((COVERAGE / "mcd").glob("*.csv"))
API = sorted((COVERAGE / "api").glob("*.json"))
BAD = COVERAGE / "bad" / "article_x_icd10_covered.csv"
TODAY = date(2026, 5, 5)


@pytest.fixture(scope="module")
def scope(graph: KnowledgeGraph) -> Scope:
    return scope_from_graph(graph)


def store_files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in CoverageStore(root).files()}


def nested_zip(tmp: Path) -> Path:
    """The fixtures packed as CMS ships the download: an outer zip holding current_article_csv.zip and a PDF."""
    inner = tmp / "current_article_csv.zip"
    with zipfile.ZipFile(inner, "w") as archive:
        for path in MCD:
            archive.write(path, path.name)
    outer = tmp / "current_article.zip"
    with zipfile.ZipFile(outer, "w") as archive:
        archive.write(inner, inner.name)
        archive.writestr("read_me.pdf", b"%PDF-1.4 not a table")
    return outer


def test_scope_comes_from_the_graph(scope: Scope) -> None:
    assert {"22510", "22513", "22515"} <= scope.codes  # the families the LCDs address
    assert {"0200T", "0201T"} <= scope.codes  # sacroplasty: watched, so an article about it would be found
    assert scope.articles[56573] == "A56573" and scope.lcds[34106] == "L34106"
    assert scope.versions[(56573, 19)] == (date(2021, 1, 10), None)


def test_csv_tables_keep_only_our_articles(scope: Scope, tmp_path: Path) -> None:
    result = import_coverage(MCD, scope, root=tmp_path, today=TODAY)
    assert result.versions == ["A56573 v18", "A56573 v19", "A57282 v17", "A99901 v1"]  # A12345 (99213 only) left out
    assert sorted(store_files(tmp_path)) == ["A56573-v18.nt", "A56573-v19.nt", "A57282-v17.nt", "A99901-v1.nt"]
    assert any("A99901" in w and "LCD is not one spinekg knows" in w for w in result.warnings)
    meta = CoverageStore(tmp_path).meta()
    assert meta is not None and meta["rows"]["icd10-covered"] == 14 and meta["kept"] == result.kept < sum(meta["rows"].values())
    text = (CoverageStore(tmp_path).current / "A56573-v19.nt").read_text()
    assert "icd10cm/M8458XS" in text and "companionDiagnosis" in text and "asteriskDiagnosis" in text
    assert "listsNonCoveredDiagnosis> <https://w3id.org/spinekg/icd10cm/M4850XA>" in text
    assert "&lt;" not in text and "ILLUSTRATIVE group 2" in text  # paragraphs unescaped twice, HTML removed
    v18 = (CoverageStore(tmp_path).current / "A56573-v18.nt").read_text()
    assert '"2021-01-10T00:00:00"^^<http://www.w3.org/2001/XMLSchema#dateTime>' in v18  # end 01/09/2021: in force until then


def test_the_download_as_cms_ships_it_a_zip_inside_a_zip(scope: Scope, tmp_path: Path) -> None:
    result = import_coverage([nested_zip(tmp_path)], scope, root=tmp_path / "store")
    assert result.versions == ["A56573 v18", "A56573 v19", "A57282 v17", "A99901 v1"]
    assert any("read_me.pdf" in w for w in result.warnings)


def test_coverage_api_responses(scope: Scope, tmp_path: Path) -> None:
    result = import_coverage(API, scope, root=tmp_path)
    assert result.versions == ["A57630 v11"]
    text = (CoverageStore(tmp_path).current / "A57630-v11.nt").read_text()
    assert "icd10cm/S22060A" in text and "group-2" in text and "Coverage API" in text


def test_a_bad_row_names_the_file_and_the_row_and_leaves_the_import_as_it_was(scope: Scope, tmp_path: Path) -> None:
    import_coverage(MCD, scope, root=tmp_path)
    before = store_files(tmp_path)
    with pytest.raises(CoverageFileError) as info:
        import_coverage([BAD, *MCD], scope, root=tmp_path)
    assert info.value.field.endswith("article_x_icd10_covered.csv row 4")
    assert "'NOT-A-CODE' is not an ICD-10-CM code" in info.value.detail
    assert store_files(tmp_path) == before


def test_a_half_import_never_replaces_a_good_one(scope: Scope, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import_coverage(MCD, scope, root=tmp_path)
    before = store_files(tmp_path)

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt  # the import is stopped just before it is put in place

    monkeypatch.setattr(importer_module, "publish", interrupted)
    with pytest.raises(KeyboardInterrupt):
        import_coverage(API, scope, root=tmp_path, replace=True)
    assert store_files(tmp_path) == before
    assert not list(tmp_path.glob(".tmp-*")), "the unfinished folder is removed"


def test_later_imports_keep_earlier_versions_unless_replaced(scope: Scope, tmp_path: Path) -> None:
    import_coverage(MCD, scope, root=tmp_path)
    kept = import_coverage(API, scope, root=tmp_path)
    assert kept.carried == 4 and len(store_files(tmp_path)) == 5
    import_coverage(API, scope, root=tmp_path, replace=True)
    assert sorted(store_files(tmp_path)) == ["A57630-v11.nt"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("code,description\n22513,x\n", "unknown header"),
        ('{"meta": {}, "data": "nope"}', "not a Coverage API response"),
        ('{"meta": {}, "data": [1]}', "a row is a JSON object"),
        ("{not json", "not valid JSON"),
    ],
    ids=["unknown-header", "data-not-a-list", "row-not-an-object", "broken-json"],
)
def test_files_that_are_not_tables(scope: Scope, tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "input.txt"
    path.write_text(content)
    with pytest.raises(InputError) as info:
        import_coverage([path], scope, root=tmp_path / "store")
    assert message in info.value.detail and str(path) in info.value.field


def test_a_row_with_too_few_fields(scope: Scope, tmp_path: Path) -> None:
    path = tmp_path / "article_x_hcpc_code.csv"
    path.write_text((COVERAGE / "mcd" / "article_x_hcpc_code.csv").read_text() + "56573,19,22513\n")
    with pytest.raises(CoverageFileError) as info:
        import_coverage([path], scope, root=tmp_path / "store")
    assert info.value.field.endswith("row 14") and "3 fields" in info.value.detail


def test_the_store_fingerprint_follows_the_files(scope: Scope, tmp_path: Path) -> None:
    """The build key includes the fingerprint (kg/build.py), so an import leads to a new build."""
    empty = CoverageStore(tmp_path).fingerprint()
    import_coverage(API, scope, root=tmp_path)
    assert CoverageStore(tmp_path).fingerprint() != empty


# ---------------------------------------------------------------------------------------------- claims


@pytest.fixture(scope="module")
def imported_graph(graph: KnowledgeGraph, scope: Scope, tmp_path_factory: pytest.TempPathFactory) -> KnowledgeGraph:
    """The built graph plus the imported fixtures (in memory: the build's store is read-only)."""
    root = tmp_path_factory.mktemp("coverage")
    import_coverage([*MCD, *API], scope, root=root)
    assert graph.build is not None
    with_coverage = KnowledgeGraph.from_files(graph.build.asserted_path, graph.build.inferred_path, graph.build)
    load_coverage(with_coverage.store, CoverageStore(root).files())
    return with_coverage


@pytest.fixture(scope="module")
def imported(imported_graph: KnowledgeGraph) -> Iterator[ClaimValidator]:
    yield ClaimValidator(imported_graph)


def test_the_questions_see_the_imported_articles(imported_graph: KnowledgeGraph, graph: KnowledgeGraph) -> None:
    from spinekg.kg.queries import get_query

    def rows_of_typed(name: str) -> list[dict]:
        return get_query(name).run(graph).values()

    def rows(name: str, **params: str) -> list[dict]:
        return get_query(name).run(imported_graph, params).values()

    listed = rows("diagnosis-listed-in", code="M48.54XA", on="2026-05-05")
    assert [(r["article"], r["imported"], r["evidence"], r["list_status"]) for r in listed] == [
        ("A56573", True, "verified", "known-complete")
    ]
    assert {r["listed_as"] for r in rows("diagnosis-listed-in", code="M48.50XA")} == {"non-covered"}
    supporting = {r["diagnosis"] for r in rows("diagnoses-supporting", code="22513", state="OR", on="2026-05-05")}
    assert supporting == {"M80.08XA", "M80.08XS", "M80.88XA", "M80.88XS", "M48.54XA", "C79.51", "C90.00", "M84.58XA", "M84.58XS"}
    (oregon,) = rows("lcd-for-state", state="OR")
    assert "v19 from 2021-01-10 (known-complete)" in oregon["imported_versions"]
    assert any(r["document"] == "A99901" for r in rows("coverage-documents"))  # an article the ontology does not type
    kinds = {r["kind"] for r in rows("lcd-provisions", lcd="L34106") if r["imported"]}
    assert kinds == {
        "covered diagnosis group",
        "covered procedure code list",
        "dual-diagnosis requirement",
        "non-covered diagnosis group",
    }
    # an imported article's other codes do not widen what the next import keeps
    assert {r["code"] for r in rows("coverage-watched-codes")} == {r["code"] for r in rows_of_typed("coverage-watched-codes")}


def verdict(validator: ClaimValidator, state: str, diagnoses: list[str], day: str = "2026-05-05") -> dict:
    claim = {
        "date_of_service": day,
        "state": state,
        "diagnoses": diagnoses,
        "lines": [{"code": "22513", "levels": ["T8"], "diagnosis_pointers": list(range(1, len(diagnoses) + 1))}],
    }
    return validator.validate(claim, today=TODAY)


def rules(found: dict) -> dict[str, str]:
    return {f["rule"]: f["severity"] for f in found["findings"]}


def test_an_imported_complete_list_makes_an_unlisted_diagnosis_an_error(imported: ClaimValidator) -> None:
    found = verdict(imported, "OR", ["S22.060A"])
    assert rules(found) == {"lcd-diagnosis-not-listed": "error"} and found["valid"] is False
    (finding,) = found["findings"]
    assert finding["evidence"] == "verified" and finding["sources"][0]["id"].startswith("MCD-")
    assert "complete and verified" in finding["message"]


def test_imported_rows_supersede_the_typed_ones_of_the_same_article(imported: ClaimValidator, validator: ClaimValidator) -> None:
    # M48.54XA is in the (invented) imported Group 1 of A56573 v19, not in the typed one
    assert rules(verdict(validator, "OR", ["M48.54XA"])) == {"lcd-diagnosis-not-listed": "warning"}
    assert rules(verdict(imported, "OR", ["M48.54XA"])) == {}
    # the imported asterisk rule (C79.51 needs M84.58XA or M84.58XS) is verified
    assert rules(verdict(imported, "OR", ["C79.51"])) == {"lcd-dual-diagnosis": "error"}
    # v18 (02/19/2020 to 01/09/2021) lists only M80.08XA: its rows replace the typed R3 groups then
    assert rules(verdict(imported, "OR", ["C79.51", "M84.58XA"], "2020-06-01")) == {
        "lcd-diagnosis-not-listed": "error",
        "diagnosis-release-not-loaded": "info",
    }


def test_an_imported_list_replaces_the_unknown_note(imported: ClaimValidator, validator: ClaimValidator) -> None:
    assert rules(verdict(validator, "OH", ["M80.88XA"])) == {"lcd-lists-unknown": "info"}
    assert rules(verdict(imported, "OH", ["M80.88XA"])) == {}
    assert rules(verdict(imported, "OH", ["S22.060A"])) == {"lcd-diagnosis-not-listed": "error"}
    assert rules(verdict(imported, "IA", ["S22.060A"])) == {}  # WPS, from the Coverage API responses


@pytest.fixture(scope="module")
def validator(graph: KnowledgeGraph) -> ClaimValidator:
    return ClaimValidator(graph)


def test_meta_records_the_files_and_their_hashes(scope: Scope, tmp_path: Path) -> None:
    import_coverage(API, scope, root=tmp_path)
    meta = json.loads((CoverageStore(tmp_path).current / "meta.json").read_text())
    assert {Path(f["path"]).name for f in meta["files"]} == {p.name for p in API}
    assert all(len(f["sha256"]) == 64 for f in meta["files"]) and meta["source"].startswith("mcd-import-")


# ---------------------------------------------------------------------------------------------- the command


def test_cli_bad_row_exits_2_with_one_line(capsys: pytest.CaptureFixture[str], graph: KnowledgeGraph) -> None:
    from spinekg.kg.cli import main

    status = main(["import", "coverage", str(BAD)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1
    assert "article_x_icd10_covered.csv row 4" in err[0] and "NOT-A-CODE" in err[0]


@pytest.mark.slow
def test_cli_import_rebuilds_the_graph_with_the_articles(
    capsys: pytest.CaptureFixture[str], graph: KnowledgeGraph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end: the import, a build of its own (another build folder: the session's stays as it is) whose
    store holds the coverage graph, and a claim judged by the imported list."""
    import pyoxigraph as ox

    from spinekg.kg.cli import main
    from spinekg.kg.graph import load_graph
    from spinekg.kg.namespaces import COVERAGE_GRAPH

    monkeypatch.setenv("SPINEKG_COVERAGE_DIR", str(tmp_path / "coverage"))
    monkeypatch.setenv("SPINEKG_BUILD_DIR", str(tmp_path / "builds"))
    assert main(["import", "coverage", *map(str, MCD)]) == 0
    out = capsys.readouterr()
    assert "4 article version(s) imported" in out.out and "graph rebuilt" in out.err
    rebuilt = load_graph(quiet=True)
    assert sum(1 for _ in rebuilt.store.quads_for_pattern(None, None, None, ox.NamedNode(COVERAGE_GRAPH))) > 100
    found = verdict(ClaimValidator(rebuilt), "OR", ["S22.060A"])
    assert rules(found) == {"lcd-diagnosis-not-listed": "error"}
