"""Shared fixtures: the reasoned graph is built (or taken from the build cache) once per session."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import yaml

from spinekg.kg.graph import KnowledgeGraph, load_graph

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent  # the checkout (tests run from it; the installed package is tested in test_packaging.py)
CASES = TESTS / "cases"
FIXTURES = TESTS / "fixtures"

# The claim cases assume that no NCCI table is imported (the ncci-* rules inactive): tables a developer
# imported into the user cache must not change them. Set before any test (and inherited by the CLI
# subprocesses); tests/kg/test_ncci_claims.py imports fixture tables of its own elsewhere.
os.environ["SPINEKG_NCCI_DIR"] = tempfile.mkdtemp(prefix="spinekg-tests-no-ncci-")
# Likewise no imported coverage article (kg/coverage): the claim cases judge by the typed LCD modules;
# tests/kg/test_coverage_import.py imports its fixtures into folders of its own.
os.environ["SPINEKG_COVERAGE_DIR"] = tempfile.mkdtemp(prefix="spinekg-tests-no-coverage-")


@pytest.fixture(scope="session")
def graph() -> KnowledgeGraph:
    return load_graph(quiet=True)


def load_cases(name: str) -> list[dict]:
    """The list of cases in tests/cases/<name>.yaml (a test asserts it is not empty)."""
    data = yaml.safe_load((CASES / name).read_text(encoding="utf-8"))
    assert isinstance(data, list) and data, f"{name} holds no cases"
    return data
