"""The one place that knows where the ontology, the queries and the build cache are.

The ontology and the queries are package data: ``spinekg/ontology`` and ``spinekg/queries`` beside
``spinekg/kg`` in an installed wheel, and ``ontology/`` and ``queries/`` beside ``kg/`` in a checkout
(an editable install maps the same names onto the checkout), so both are found next to this package.
The reasoned-graph cache is never written there: it goes to the user's cache folder, or to
``$SPINEKG_HOME/cache``, or to ``$SPINEKG_BUILD_DIR``, one sub-folder per content hash."""

from __future__ import annotations

import os
from pathlib import Path

from spinekg.kg.errors import InputError, SpinekgError

PACKAGE = "spinekg"


def data_root() -> Path:
    """The folder that holds ``ontology/`` and ``queries/``: the checkout, or site-packages/spinekg;
    $SPINEKG_DATA_DIR points at an editor's working copy instead."""
    env = _env_path("SPINEKG_DATA_DIR")
    root = env or Path(__file__).resolve().parent.parent
    if not (root / "ontology" / "catalog-v001.xml").is_file():
        hint = "check SPINEKG_DATA_DIR" if env else "the spinekg installation is incomplete; reinstall it"
        raise SpinekgError(f"no ontology/catalog-v001.xml under {root}: {hint}")
    return root


def ontology_dir() -> Path:
    return data_root() / "ontology"


def root_ontology() -> Path:
    return ontology_dir() / "spinekg.ttl"


def full_ontology() -> Path:
    """The root that also imports the generated data modules (loaded beside the reasoned graph, not reasoned over)."""
    return ontology_dir() / "spinekg-full.ttl"


def catalog_file() -> Path:
    return ontology_dir() / "catalog-v001.xml"


def queries_dir() -> Path:
    return data_root() / "queries"


def site_rules_dir() -> Path | None:
    """A folder of an organisation's own claim rules ($SPINEKG_RULES_DIR): *.rq files of the same
    kinds as queries/rules/, checked beside them; None when unset."""
    folder = _env_path("SPINEKG_RULES_DIR")
    if folder is not None and not folder.is_dir():
        raise InputError("SPINEKG_RULES_DIR", f"{folder} is not a folder")
    return folder


def java_dir() -> Path:
    return Path(__file__).resolve().parent / "java"


def cache_dir() -> Path:
    """Where builds (and later imported tables) are kept: $SPINEKG_HOME/cache, else the user cache folder."""
    home = _env_path("SPINEKG_HOME")
    if home:
        return home / "cache"
    import platformdirs

    return Path(platformdirs.user_cache_dir(PACKAGE, appauthor=False))


def ncci_dir() -> Path:
    """Where imported NCCI tables are kept ($SPINEKG_NCCI_DIR overrides <cache>/ncci)."""
    return _env_path("SPINEKG_NCCI_DIR") or cache_dir() / "ncci"


def coverage_dir() -> Path:
    """Where imported Medicare coverage articles are kept ($SPINEKG_COVERAGE_DIR overrides <cache>/coverage)."""
    return _env_path("SPINEKG_COVERAGE_DIR") or cache_dir() / "coverage"


def builds_dir() -> Path:
    """The parent of the per-hash build folders ($SPINEKG_BUILD_DIR overrides it)."""
    return _env_path("SPINEKG_BUILD_DIR") or cache_dir() / "builds"


def _env_path(name: str) -> Path | None:
    """The folder a SPINEKG_ variable names, ``~`` expanded; None when it is unset or empty."""
    value = os.environ.get(name)
    if not value:
        return None
    try:
        return Path(value).expanduser()
    except RuntimeError:  # ~user of no such user, or no home folder at all
        raise SpinekgError(f"{name}={value}: cannot expand the ~ (no such user or home folder)") from None


def writable_dir(path: Path, what: str) -> Path:
    """Create ``path`` if needed and check that files can be written there; one readable error if not."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpinekgError(f"cannot create the {what} {path}: {exc.strerror or exc}") from None
    if not path.is_dir() or not os.access(path, os.W_OK | os.X_OK):
        raise SpinekgError(f"the {what} {path} is not a writable folder; set SPINEKG_BUILD_DIR or SPINEKG_HOME elsewhere")
    return path
