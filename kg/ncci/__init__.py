"""CMS's NCCI tables (PTP, MUE, add-on code edits) imported into a memory-mapped store in the cache folder.

* ``import_ncci(paths, release=..., setting=...)`` (importer.py): recognises each file by its header,
  streams it, and publishes each table of each release atomically under ``<cache>/ncci/<kind>/<release>``.
* ``NcciStore.open()`` (store.py): pair, Column 2, MUE and add-on lookups as of a date, each a binary
  search in a memory-mapped array; which release and which row answer is documented there.
* ``diff_ptp(store, old, new)`` (diff.py): edits added, deleted, changed and removed between two releases.

The layouts (layouts.py) and the on-disk columns (tables.py) are declared as data; no code, pair or
rationale is typed in Python.
"""

from spinekg.kg.ncci.diff import DiffRow, PtpDiff, diff_ptp
from spinekg.kg.ncci.importer import ImportResult, import_ncci, store_root
from spinekg.kg.ncci.layouts import KINDS, SERVICE_TYPES, SETTINGS
from spinekg.kg.ncci.release import Release
from spinekg.kg.ncci.store import AddOnEdits, AocEdit, Mue, NcciStore, PtpEdit, ReleaseInfo
from spinekg.kg.ncci.values import NcciFileError

__all__ = [
    "KINDS",
    "SERVICE_TYPES",
    "SETTINGS",
    "AddOnEdits",
    "AocEdit",
    "DiffRow",
    "ImportResult",
    "Mue",
    "NcciFileError",
    "NcciStore",
    "PtpDiff",
    "PtpEdit",
    "Release",
    "ReleaseInfo",
    "diff_ptp",
    "import_ncci",
    "store_root",
]
