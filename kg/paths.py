"""The one place that knows where ontology/, queries/ and build/ are.

The project runs from a checkout (``pip install -e .``); SPINEKG_HOME points elsewhere and
SPINEKG_BUILD_DIR moves the build cache (tests use a temporary one when they must)."""

import os
from pathlib import Path

from kg.errors import SpinekgError


def project_root() -> Path:
    env = os.environ.get("SPINEKG_HOME")
    root = Path(env) if env else Path(__file__).resolve().parent.parent
    if not (root / "ontology" / "catalog-v001.xml").is_file():
        raise SpinekgError(
            f"no ontology/catalog-v001.xml under {root}; install spinekg from a checkout with "
            "'pip install -e .' or set SPINEKG_HOME to the checkout"
        )
    return root


def ontology_dir() -> Path:
    return project_root() / "ontology"


def root_ontology() -> Path:
    return ontology_dir() / "spinekg.ttl"


def catalog_file() -> Path:
    return ontology_dir() / "catalog-v001.xml"


def queries_dir() -> Path:
    return project_root() / "queries"


def build_dir() -> Path:
    env = os.environ.get("SPINEKG_BUILD_DIR")
    return Path(env) if env else project_root() / "build"


def java_dir() -> Path:
    return Path(__file__).resolve().parent / "java"
