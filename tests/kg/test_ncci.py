"""The NCCI data layer (kg/ncci) on the fixtures of tests/fixtures/ncci: lookups as of dates
(cases/ncci-lookups.yaml), refused files (cases/ncci-errors.yaml), every input form (CMS TXT/CSV, the
shared copies, gzip, zip, xlsx), bounded-memory sorting, atomic publication, release diffs, the CLI."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from spinekg.kg.cli import main
from spinekg.kg.errors import InputError
from spinekg.kg.ncci import NcciFileError, NcciStore, diff_ptp, import_ncci, store_root
from spinekg.kg.ncci import importer as ncci_importer
from spinekg.kg.ncci.release import release_from_flag, release_from_name
from tests.conftest import FIXTURES, load_cases

NCCI = FIXTURES / "ncci"
V321 = [f"ccipra-v321r0-f{n}.TXT" for n in (1, 2, 3, 4)]
V322 = [f"ccipra-v322r0-f{n}.TXT" for n in (1, 2, 3, 4)]
OTHERS = [
    "ccioph-v321r0-f1.TXT",
    "ptp-practitioner-v301r0.tsv",
    "ptp-practitioner-2024-07-01.tsv",
    "MCR_MUE_PractitionerServices_Eff_04-01-2026.csv",
    "MCR_MUE_OutpatientHospitalServices_Eff_04-01-2026.csv",
    "mue-2024-04-01.tsv",
    "AOC_V2026Q2-MCR.txt",
]
LOOKUPS = load_cases("ncci-lookups.yaml")
ERRORS = load_cases("ncci-errors.yaml")


def _paths(names: list[str], folder: Path = NCCI) -> list[Path]:
    return [folder / name for name in names]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every fixture imported in one call: the importer groups them into releases."""
    folder = tmp_path_factory.mktemp("ncci-cache")
    import_ncci(_paths(V321 + V322 + OTHERS), cache=folder)
    return folder


@pytest.fixture(scope="module")
def store(cache: Path) -> Any:
    with NcciStore.open(cache) as opened:
        yield opened


def _listed(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@pytest.mark.parametrize("case", LOOKUPS, ids=lambda c: c["id"])
def test_lookup(case: dict[str, Any], store: NcciStore) -> None:
    answer = getattr(store, case["ask"])(**case["args"])
    expect = case["expect"]
    if expect is None:
        assert answer in (None, []), answer
    elif isinstance(answer, list):
        for name, values in expect.items():
            assert [getattr(a, name) for a in answer] == values, (name, answer)
    else:
        assert answer is not None
        for name, value in expect.items():
            assert _listed(getattr(answer, name)) == value, (name, answer)


def test_cases_are_collected() -> None:
    assert len(LOOKUPS) > 30 and len(ERRORS) > 15
    assert len({c["id"] for c in LOOKUPS + ERRORS}) == len(LOOKUPS) + len(ERRORS)


def _spoil(case: dict[str, Any], folder: Path) -> Path:
    """The case's file, written into ``folder``."""
    data = (NCCI / case["from"]).read_bytes()
    if "replace" in case:
        old, new = (s.encode("cp1252") for s in case["replace"])
        assert old in data, f"{case['id']}: {old!r} is not in {case['from']}"
        data = data.replace(old, new, 1)
    if "keep_lines" in case:
        data = b"".join(data.splitlines(keepends=True)[: case["keep_lines"]])
    if "text" in case:
        data = case["text"].encode("utf-8")
    if case.get("gzip"):
        data = gzip.compress(data)
    if "truncate" in case:
        data = data[: case["truncate"]]
    path = folder / case.get("name", case["from"])
    path.write_bytes(data)
    return path


def _published(cache: Path) -> list[str]:
    root = store_root(cache)
    return (
        sorted(f"{k.name}/{e.name}" for k in root.glob("*") for e in k.iterdir() if not e.name.startswith("."))
        if root.is_dir()
        else []
    )


@pytest.mark.parametrize("case", ERRORS, ids=lambda c: c["id"])
def test_refused(
    case: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 2, one line naming the file and the row, and nothing published."""
    monkeypatch.setenv("SPINEKG_HOME", str(tmp_path / "home"))
    path = _spoil(case, tmp_path)
    status = main(["import", "ncci", str(path), *case.get("args", [])])
    out, err = capsys.readouterr()
    assert status == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert case["message"] in lines[0], lines[0]
    if "row" in case:
        assert f"{path} row {case['row']}: " in lines[0], lines[0]
    elif not case.get("args"):
        assert str(path) in lines[0], lines[0]
    assert _published(tmp_path / "home" / "cache") == []


def test_same_file_twice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NcciFileError, match="the same table as"):
        import_ncci(_paths([V321[0], V321[0]]), cache=tmp_path)


def test_releases_and_meta(store: NcciStore) -> None:
    """The four parts are one release; each table records its inputs (sha256, rows), size and time."""
    assert [(i.kind, i.release) for i in store.releases()] == [
        ("ptp-practitioner", "v30.1"),
        ("ptp-practitioner", "2024-07-01"),
        ("ptp-practitioner", "v32.1"),
        ("ptp-practitioner", "v32.2"),
        ("ptp-outpatient", "v32.1"),
        ("mue-practitioner", "2024-04-01"),
        ("mue-practitioner", "2026-04-01"),
        ("mue-outpatient", "2024-04-01"),
        ("mue-outpatient", "2026-04-01"),
        ("mue-dme", "2024-04-01"),
        ("aoc", "2026Q2"),
    ]
    v321 = store.release("ptp-practitioner", release="v32.1")
    assert v321 is not None
    assert v321.effective == date(2026, 4, 1) and v321.rows == 18 and v321.effective_dates is True and not v321.warnings
    assert [(s["file"], s["part"], s["rows"]) for s in v321.sources] == [
        (n, i, r) for i, (n, r) in enumerate(zip(V321, (3, 10, 3, 2), strict=True), 1)
    ]
    for source in v321.sources:
        assert source["sha256"] == hashlib.sha256((NCCI / source["file"]).read_bytes()).hexdigest()
    assert v321.bytes == sum(p.stat().st_size for p in v321.path.iterdir() if p.name != "meta.json")
    assert v321.import_seconds >= 0 and v321.imported_at
    outpatient = store.release("ptp-outpatient", release="v32.1")
    assert outpatient is not None and "f1 only" in outpatient.warnings[0]
    copy = store.release("ptp-practitioner", release="v30.1")
    assert copy is not None and copy.effective_dates is False and "no effective dates" in copy.warnings[0]
    dme = store.release("mue-dme")
    assert dme is not None and dme.sources[0]["file"] == "mue-2024-04-01.tsv" and dme.rows == 1


@pytest.mark.parametrize(
    ("name", "release", "effective"),
    [
        ("medicare-ncci-2026q3-practitioner-ptp-edits-ccipra-v322r0-f1.zip", "v32.2", date(2026, 7, 1)),
        ("ccioph-v301r0-f4.TXT", "v30.1", date(2024, 4, 1)),
        ("ccipra-v300r1-f1.TXT", "v30.0r1", date(2024, 1, 1)),
        ("ptp-practitioner-2024-07-01.tsv.gz", "2024-07-01", date(2024, 7, 1)),
        ("MCR_MUE_DMESupplierServices_Eff_10-01-2025.csv", "2025-10-01", date(2025, 10, 1)),
        ("AOC_V2025Q4_01-MCR.txt", "2025Q4-01", date(2025, 10, 1)),
        ("AOC_V2026Q2-MCR.xlsx", "2026Q2", date(2026, 4, 1)),
    ],
)
def test_release_from_name(name: str, release: str, effective: date) -> None:
    assert release_from_name(name) == (release, effective)


def test_release_flag(tmp_path: Path) -> None:
    assert release_from_flag("v30.1").effective == date(2024, 4, 1)
    assert release_from_flag("2024-04-01").id == "2024-04-01"
    assert release_from_flag("04-01-2024").id == "2024-04-01"
    assert release_from_flag("2026q2").id == "2026Q2"
    with pytest.raises(InputError, match="--effective"):
        release_from_flag("v30.7")
    assert release_from_flag("v30.7", date(2025, 2, 1)).effective == date(2025, 2, 1)
    renamed = tmp_path / "ptp-practitioner.tsv"
    shutil.copy(NCCI / "ptp-practitioner-v301r0.tsv", renamed)
    (result,) = import_ncci([renamed], release="2024Q3", cache=tmp_path)
    assert (result.kind, result.release.id, result.release.effective, result.release.origin) == (
        "ptp-practitioner",
        "2024Q3",
        date(2024, 7, 1),
        "--release",
    )


def _columns(cache: Path, kind: str, release: str) -> dict[str, bytes]:
    folder = store_root(cache) / kind / release
    meta = json.loads((folder / "meta.json").read_text())
    return {
        "strings": json.dumps(meta["strings"]).encode(),
        **{p.name: p.read_bytes() for p in folder.iterdir() if p.name != "meta.json"},
    }


def test_gzip_zip_and_plain_read_alike(tmp_path: Path) -> None:
    """The same rows give byte-identical tables whether plain, gzipped, or in a zip as CMS ships it."""
    import_ncci(_paths(V321), cache=tmp_path / "plain")
    gz = tmp_path / "gz"
    gz.mkdir()
    for name in V321:
        (gz / f"{name}.gz").write_bytes(gzip.compress((NCCI / name).read_bytes()))
    import_ncci([gz / f"{n}.gz" for n in V321], cache=tmp_path / "gzip")
    zips = []
    for n, name in enumerate(V321, 1):
        archive = tmp_path / f"medicare-ncci-2026q2-practitioner-ptp-edits-ccipra-v321r0-f{n}.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
            z.write(NCCI / name, name)
            z.writestr("CMS-license-notice.pdf", b"%PDF-1.4 not a table")
        zips.append(archive)
    (result,) = import_ncci(zips, cache=tmp_path / "zip")
    assert result.sources[0]["member"] == V321[0] and result.rows == 18
    plain = _columns(tmp_path / "plain", "ptp-practitioner", "v32.1")
    assert _columns(tmp_path / "gzip", "ptp-practitioner", "v32.1") == plain
    assert _columns(tmp_path / "zip", "ptp-practitioner", "v32.1") == plain


def test_xlsx_reads_like_text(tmp_path: Path) -> None:
    """CMS's AOC xlsx layout (a notice in row 1, the header in row 2, text cells), read in read-only mode."""
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("AOC_V2026Q2-MCR_xlsx")
    for line in (NCCI / "AOC_V2026Q2-MCR.txt").read_text().splitlines():
        sheet.append([cell or None for cell in line.split("\t")])
    book.save(tmp_path / "AOC_V2026Q2-MCR.xlsx")
    import_ncci([tmp_path / "AOC_V2026Q2-MCR.xlsx"], cache=tmp_path / "xlsx")
    import_ncci([NCCI / "AOC_V2026Q2-MCR.txt"], cache=tmp_path / "txt")
    assert _columns(tmp_path / "xlsx", "aoc", "2026Q2") == _columns(tmp_path / "txt", "aoc", "2026Q2")
    with NcciStore.open(tmp_path / "xlsx") as store:
        found = store.aoc_primaries("22515", on=date(2026, 5, 1))
        assert found is not None and found.primaries == ("22513", "22514")


def test_bounded_sort_spills_runs_and_gives_the_same_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts given in reverse order and sorted two rows at a time (nine runs merged) give the same files."""
    import_ncci(_paths(V321), cache=tmp_path / "memory")
    spilled: list[int] = []
    original = ncci_importer.RunSorter._spill

    def spill(self: ncci_importer.RunSorter) -> None:
        spilled.append(len(self._buffer))
        original(self)

    monkeypatch.setattr(ncci_importer, "CHUNK_ROWS", 2)
    monkeypatch.setattr(ncci_importer.RunSorter, "_spill", spill)
    import_ncci(_paths(list(reversed(V321))), cache=tmp_path / "runs")
    assert len(spilled) == 9
    assert _columns(tmp_path / "runs", "ptp-practitioner", "v32.1") == _columns(tmp_path / "memory", "ptp-practitioner", "v32.1")
    assert not list((store_root(tmp_path / "runs") / "ptp-practitioner").glob(".tmp-*"))


def _reimport_with(tmp_path: Path, replace: tuple[str, str], part: int = 1) -> list[Path]:
    folder = tmp_path / f"changed-{time.time_ns()}"
    folder.mkdir()
    for name in V321:
        data = (NCCI / name).read_bytes()
        if name == V321[part]:
            assert replace[0].encode() in data
            data = data.replace(replace[0].encode(), replace[1].encode())
        (folder / name).write_bytes(data)
    return _paths(V321, folder)


RATIONALE = (
    "22512\t20225\t\t20150101\t*\t1\tCPT Manual or CMS manual coding instruction",
    "22512\t20225\t\t20150101\t*\t1\tMore extensive procedure",
)
SPOILED = ("99151\t99152\t\t20170101\t*\t0", "99151\t99152\t\t20170101\t*\tX")


def _rationale(cache: Path) -> str:
    with NcciStore.open(cache) as store:
        edit = store.ptp("22512", "20225", on=date(2026, 5, 1))
        assert edit is not None
        return edit.rationale


def test_reimport_replaces_atomically(tmp_path: Path) -> None:
    """A re-import switches the release in one rename; a store opened before keeps its (unlinked) files."""
    import_ncci(_paths(V321), cache=tmp_path)
    kind = store_root(tmp_path) / "ptp-practitioner"
    before = os.readlink(kind / "v32.1")
    with NcciStore.open(tmp_path) as old_store:
        assert old_store.ptp("22512", "20225", on=date(2026, 5, 1)) is not None
        assert old_store.is_current()
        import_ncci(_reimport_with(tmp_path, RATIONALE), cache=tmp_path)
        assert not old_store.is_current()
        assert _rationale(tmp_path) == "More extensive procedure"
        still = old_store.ptp("22512", "20225", on=date(2026, 5, 1))
        assert still is not None and still.rationale == "CPT Manual or CMS manual coding instruction"
    assert os.readlink(kind / "v32.1") != before
    assert [p.name for p in (kind / ".versions").iterdir()] == [os.path.basename(os.readlink(kind / "v32.1"))]


def test_bad_row_in_a_reimport_leaves_the_old_release(tmp_path: Path) -> None:
    import_ncci(_paths(V321), cache=tmp_path)
    kind = store_root(tmp_path) / "ptp-practitioner"
    before = os.readlink(kind / "v32.1")
    changed = _reimport_with(tmp_path, SPOILED, part=3)
    (changed[1]).write_bytes((changed[1]).read_bytes().replace(RATIONALE[0].encode(), RATIONALE[1].encode()))
    with pytest.raises(NcciFileError, match=r"f4.TXT row 8: modifier indicator 'X'"):
        import_ncci(changed, cache=tmp_path)
    assert os.readlink(kind / "v32.1") == before
    assert _rationale(tmp_path) == "CPT Manual or CMS manual coding instruction"
    assert not [p for p in kind.iterdir() if p.name.startswith(".tmp-")]


def test_interrupted_import_leaves_the_old_release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C after every table is written but before the switch: the old release stays, the new files go."""
    import_ncci(_paths(V321), cache=tmp_path)

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(ncci_importer, "publish", interrupted)
    with pytest.raises(KeyboardInterrupt):
        import_ncci(_reimport_with(tmp_path, RATIONALE), cache=tmp_path)
    assert _rationale(tmp_path) == "CPT Manual or CMS manual coding instruction"
    kind = store_root(tmp_path) / "ptp-practitioner"
    assert sorted(p.name for p in kind.iterdir()) == [".versions", "v32.1"]


def test_what_a_crash_leaves_is_ignored_then_swept(tmp_path: Path) -> None:
    import_ncci(_paths(V321), cache=tmp_path)
    kind = store_root(tmp_path) / "ptp-practitioner"
    dead = kind / ".tmp-999999999-1-v32.1"
    dead.mkdir()
    (dead / "key.u64").write_bytes(b"half")
    orphan = kind / ".versions" / "v32.1@1"
    orphan.mkdir()
    os.utime(orphan, (time.time() - 7200, time.time() - 7200))
    staged = kind / ".link-999999999-1"
    staged.symlink_to(".versions/v32.1@1")
    with NcciStore.open(tmp_path) as store:
        assert [i.release for i in store.releases()] == ["v32.1"]
    import_ncci(_paths(V322), cache=tmp_path)
    assert not dead.exists() and not orphan.exists() and not staged.is_symlink()
    with NcciStore.open(tmp_path) as store:
        assert [i.release for i in store.releases()] == ["v32.1", "v32.2"]


def test_diff_of_cms_releases_matches_by_effective_date(store: NcciStore) -> None:
    result = diff_ptp(store, "v32.1", "v32.2")
    assert result.matched_by == "effective date"
    assert result.counts == {"added": 1, "deleted": 1, "changed": 1, "removed": 0, "unchanged": 16}
    assert result.rows == []
    only = diff_ptp(store, "v32.1", "v32.2", code="22510")
    assert [(r.status, r.flat()["column2"], r.flat()["new_deletion"]) for r in only.rows] == [("deleted", "36005", "2026-06-30")]
    assert only.counts["unchanged"] == 6


def test_diff_of_copies_matches_by_order(store: NcciStore) -> None:
    result = diff_ptp(store, "v30.1", "2024-07-01", keep_rows=True)
    assert result.matched_by == "order"
    assert result.counts == {"added": 1, "deleted": 1, "changed": 0, "removed": 0, "unchanged": 7}
    assert sorted((r.status, r.flat()["column1"], r.flat()["column2"]) for r in result.rows) == [
        ("added", "22513", "22514"),
        ("deleted", "22510", "36005"),
    ]


def test_lookups_refuse_bad_input(store: NcciStore) -> None:
    with pytest.raises(InputError, match="not a HCPCS/CPT code"):
        store.ptp("2251", "22511")
    with pytest.raises(InputError, match="setting"):
        store.ptp("22510", "22511", setting="hospital")
    with pytest.raises(InputError, match="no ptp-practitioner release 'v1.0'"):
        store.ptp("22510", "22511", release="v1.0")


def test_empty_store(tmp_path: Path) -> None:
    with NcciStore.open(tmp_path) as store:
        assert store.releases() == []
        assert store.ptp("22510", "22511") is None and store.mue("22512") is None and store.aoc_primaries("22512") is None
        assert store.column2_of("22510") == []


def test_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`spinekg import ncci` prints one line per table; `ncci releases` lists them; `ncci diff` counts and lists."""
    monkeypatch.setenv("SPINEKG_HOME", str(tmp_path))
    assert main(["import", "ncci", *map(str, _paths(V321 + V322 + ["mue-2024-04-01.tsv", "ccioph-v321r0-f1.TXT"]))]) == 0
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 6, out
    assert lines[0].startswith("ptp-practitioner v32.1 (in force from 2026-04-01): 18 rows from 4 file(s), ") and lines[
        0
    ].endswith(" s")
    assert "warning: ptp-outpatient v32.1: release v32.1 was imported from part(s) f1 only" in err
    assert main(["ncci", "releases", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["kind"], r["release"], r["rows"]) for r in listed] == [
        ("ptp-practitioner", "v32.1", 18),
        ("ptp-practitioner", "v32.2", 19),
        ("ptp-outpatient", "v32.1", 2),
        ("mue-practitioner", "2024-04-01", 2),
        ("mue-outpatient", "2024-04-01", 1),
        ("mue-dme", "2024-04-01", 1),
    ]
    assert main(["ncci", "diff", "v32.1", "v32.2"]) == 0
    assert capsys.readouterr().out.strip() == (
        "ptp-practitioner v32.1 -> v32.2: 1 added, 1 deleted, 1 changed, 0 removed, 16 unchanged; rows matched by effective date"
    )
    assert main(["ncci", "diff", "v32.1", "v32.2", "--code", "22512"]) == 0
    out = capsys.readouterr().out
    assert "(pairs with 22512): 0 added, 0 deleted, 1 changed" in out and "More extensive procedure" in out
    assert main(["ncci", "diff", "v32.1", "v32.2", "--code", "22512", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        "changed,22512,20225,1,2015-01-01,*,CPT Manual or CMS manual coding instruction,1,2015-01-01,*,More extensive procedure"
    ]
    assert main(["ncci", "diff", "v32.1", "v9.9"]) == 2
    assert "no ptp-practitioner release 'v9.9' is imported" in capsys.readouterr().err


def test_family_module_holds_every_row_of_our_codes(store: NcciStore, tmp_path: Path) -> None:
    """spinekg ncci family-module's core: every row (deleted ones too) with one of the codes in either
    column, written as Turtle that parses, names its release and is the same bytes when run again."""
    from rdflib import Graph, Literal, Namespace
    from rdflib.namespace import OWL, RDF

    from spinekg.kg.ncci.family import family_edits, render_module

    skg = Namespace("https://w3id.org/spinekg/vocab/")
    table = family_edits(store, ["22510"], "practitioner")
    expected = [e for e in _all_rows(store, table.info) if "22510" in (e.column1, e.column2)]
    assert table.edits and sorted(table.edits) == sorted(expected)
    text = render_module([table], {"practitioner": "cms-ncci-ptp-practitioner-2024"}, ["22510"], table.info.release)
    assert text == render_module([table], {"practitioner": "cms-ncci-ptp-practitioner-2024"}, ["22510"], table.info.release)
    graph = Graph().parse(data=text, format="turtle")
    (header,) = graph.subjects(RDF.type, OWL.Ontology)
    assert str(graph.value(header, OWL.versionIRI)).endswith("/releases/" + table.info.release)
    edits = set(graph.subjects(RDF.type, skg.NcciPtpEdit))
    assert len(edits) == len(table.edits)
    for edit in table.edits:
        rows = [
            e
            for e in edits
            if graph.value(e, skg.ptpColumn1) == Literal(edit.column1)
            and graph.value(e, skg.ptpColumn2) == Literal(edit.column2)
            and graph.value(e, skg.ncciModifierIndicator) == Literal(str(edit.modifier_indicator))
        ]
        assert rows, edit
        deleted = {graph.value(e, skg.deletedOn) for e in rows}
        assert (edit.deletion is None and None in deleted) or any(
            d is not None and d.toPython().date() == edit.deletion + timedelta(days=1) for d in deleted
        )


def _all_rows(store: NcciStore, info: Any) -> list[Any]:
    from spinekg.kg.ncci.store import _ptp_edit

    table = store.table(info)
    return [_ptp_edit(table, i, "practitioner") for i in range(table.rows)]


def test_family_module_without_an_imported_release_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "spinekg.kg.cli",
            "ncci",
            "family-module",
            "--source",
            "practitioner=x",
            "-o",
            str(tmp_path / "m.ttl"),
        ],
        env={**os.environ, "SPINEKG_NCCI_DIR": str(tmp_path / "empty")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "no ptp-practitioner release is imported" in proc.stderr and not (tmp_path / "m.ttl").exists()
