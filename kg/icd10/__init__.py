"""ICD-10-CM as data: the whole code set of the loaded release(s), read from the ``simple-icd-10-cm``
package at ``spinekg build`` (never at start-up) and kept in the build folder: as a SKOS concept scheme
in its own named graph (``https://w3id.org/spinekg/graph/icd10cm``, outside what HermiT reasons over,
queried with the ontology through the union default graph) and as an index file for the hot lookups.

API (the claim rules, the coverage rules and the diagnosis pages code against it)::

    from spinekg.kg import icd10

    icd10.SHAPE.fullmatch("M80.08XA")    # the shape of an ICD-10-CM code, dot optional (see SHAPE)
    icd10.is_shaped("8M0.08XA")          # False; "M8O.08XA" (letter O) is shaped, though no code holds it
    icd10.normalize("m8008xa")           # "M80.08XA": dotted, upper-case; ValueError if not shaped
    icd10.undotted("M80.08XA")           # "M8008XA"
    icd10.iri("M80.08XA")                # "https://w3id.org/spinekg/icd10cm/M8008XA" (dot optional)
    icd10.chapter_iri("13"), icd10.block_iri("M80-M85")   # .../icd10cm/chapter/13, .../icd10cm/block/M80-M85

    codes = icd10.code_set()             # the current build's code set (builds if needed); opened once
    codes = icd10.CodeSet.open(folder)   # or that of a build folder (KnowledgeGraph.build.folder)
    codes.releases                       # tuple[Release, ...], oldest first
    codes.release_on(date(2026, 5, 5))   # the loaded Release in force on that date, or None (not loaded)
    d = codes.lookup("M80.08XA", on=date(2026, 5, 5))   # Diagnosis | None (µs; remembered)
    d = icd10.lookup("M8008XA", on=...)  # the same through code_set()
    codes.children("M80.08")             # tuple of child codes (dotted), in the release's order
    codes.nearest_billable("M80.08")     # the first billable descendants (for "report M80.08XA ...")
    codes.placeholder_form("M8008A")     # "M80.08XA": a seventh character written without its X
    codes.one_edit_codes("M8O.08XA")     # ("M80.08XA",): codes one replaced character away

    Release(id="2026-04", label="ICD-10-CM April 1, 2026", effective=date(2026, 4, 1),
            until=date(2026, 9, 30), iri=".../icd10cm/release/2026-04", source="S60",
            package="simple-icd-10-cm 1.5.0")
    Diagnosis(code="M80.08XA", iri=..., title="Age-related osteoporosis with current pathological
              fracture, vertebra(e), initial encounter for fracture", billable=True,
              kind="code",                 # chapter | block | category | code (subcategory or extended)
              ancestors=("M80.08", "M80.0", "M80", "M80-M85", "13"),   # nearest first, up to the chapter
              children=0,                  # how many children; 0 for a billable leaf
              releases=("2026-04",))

``lookup(code, on=None)`` takes a code with or without the dot, any case, or a block ("M80-M85") or
chapter ("13") notation; ``on=None`` answers from the latest loaded release. On a date it answers from
the release in force on that date only: None when the code is not in that release *or* no loaded
release is in force then; ``release_on(on) is None`` tells the second apart ("the release in force on
that date is not loaded"). When ICD-10-CM itself took effect (2015-10-01) and the dates each release is
in force are facts of the ontology (``skg:DiagnosisCodeSystem`` and ``skg:IcdRelease`` individuals in
ontology/icd10cm.ttl), not of this module.

A claim rule kind reads the code set by declaring ``uses_icd10 = True``: the engine sets ``self.icd10``
(a CodeSet, or None for a graph not loaded from a build) after compiling the rule (kg/claims/kinds.py;
kg/claims/diagnosis_kinds.py uses it). The claim's diagnoses are ``Claim.diagnoses`` (dotted), a line's
pointers ``Line.diagnosis_pointers`` (1-based) and ``Line.pointed(claim.diagnoses)`` the codes it points to.
"""

from __future__ import annotations

from spinekg.kg.icd10.codes import (
    SHAPE,
    block_iri,
    chapter_iri,
    iri,
    is_shaped,
    normalize,
    undotted,
)
from spinekg.kg.icd10.store import CodeSet, Diagnosis, Release, code_set, lookup

__all__ = [
    "SHAPE",
    "CodeSet",
    "Diagnosis",
    "Release",
    "block_iri",
    "chapter_iri",
    "code_set",
    "iri",
    "is_shaped",
    "lookup",
    "normalize",
    "undotted",
]
