"""The shape of an ICD-10-CM code, its spellings (with or without the dot) and its IRIs: string work
only, no data, so that the claim parser can import it without loading the code set.

The shape is the code structure as NCI SEER's ICD-10-CM training restates it (3 to 7 characters; the
first a letter, the third to seventh digits or letters; a dot after the third character when more
follow: https://training.seer.cancer.gov/icd10cm/icd10cm-code-structure.html), except that the second
character may be a letter too: the structure says a digit, but the fiscal year 2026 release added the
category QA0 (genetic disorders, not elsewhere classified), so the loaded data itself has a letter there.
Every code of the loaded release has this shape (tests/kg/test_icd10.py checks all of them). A
well-shaped string that is no code (``M8O.08XA`` with a letter O) is a finding of the claim rules,
not unusable input."""

from __future__ import annotations

import re

from spinekg.kg.namespaces import PREFIXES

ICD10CM = PREFIXES["icd10cm"]
SHAPE = re.compile(r"([A-Z][0-9A-Z]{2})(?:\.?([0-9A-Z]{1,4}))?")
"""An ICD-10-CM code after upper-casing: a letter, two letters or digits, then an optional dot and one
to four letters or digits (M80.08XA, M8008XA, C41.2, C79.51, QA0.0101)."""
MAX_TEXT = 16  # longer input is not looked at character by character


def is_shaped(text: str) -> bool:
    """Whether ``text`` (any case, surrounding blanks ignored) has the shape of an ICD-10-CM code.

    >>> is_shaped("m80.08xa"), is_shaped("M8008XA"), is_shaped("M80."), is_shaped("8M0.08XA")
    (True, True, False, False)
    """
    return _match(text) is not None


def normalize(text: str) -> str:
    """The code as the tabular list writes it: upper case, with the dot after the third character.

    >>> normalize(" m8008xa "), normalize("C412"), normalize("M80")
    ('M80.08XA', 'C41.2', 'M80')

    Raises ValueError for a string not shaped like an ICD-10-CM code."""
    found = _match(text)
    if found is None:
        raise ValueError(f"{text[:MAX_TEXT]!r} is not shaped like an ICD-10-CM code")
    head, tail = found.groups()
    return f"{head}.{tail}" if tail else head


def undotted(code: str) -> str:
    """The code without its dot, as the CDC's order and code files write it: ``M80.08XA`` -> ``M8008XA``."""
    return code.replace(".", "", 1)


def iri(code: str) -> str:
    """The IRI of a code (with or without the dot): ``https://w3id.org/spinekg/icd10cm/M8008XA``."""
    return ICD10CM + undotted(normalize(code))


def chapter_iri(chapter: str) -> str:
    """The IRI of a chapter of the tabular list, by its number: ``.../icd10cm/chapter/13``."""
    return f"{ICD10CM}chapter/{chapter}"


def block_iri(block: str) -> str:
    """The IRI of a block (a range of categories such as ``M80-M85``, or ``B99`` for a block of one
    category): ``.../icd10cm/block/M80-M85``; apart from the codes, since a block may share its name
    with its only category."""
    return f"{ICD10CM}block/{block}"


def release_iri(release: str) -> str:
    """The IRI of a release (``2026-04``): ``.../icd10cm/release/2026-04``."""
    return f"{ICD10CM}release/{release}"


def _match(text: str) -> re.Match[str] | None:
    # ASCII first: str.upper() would turn the long s "ſ" into "S" and accept a code nobody wrote
    if not isinstance(text, str) or len(text) > MAX_TEXT or not text.isascii():
        return None
    return SHAPE.fullmatch(text.strip().upper())
