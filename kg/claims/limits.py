"""How much one claim may hold, so that checking it is bounded work. The same defaults serve the CLI
(``spinekg validate``, with options and environment variables) and the HTTP API (api/settings.py reads
the same variables). None of these is a billing rule: they bound the input, as the claim formats do."""

from __future__ import annotations

import os
from collections.abc import Mapping

from spinekg.kg.errors import InputError

MAX_CLAIM_LINES = 50  # X12 837P: the service line loop (2400) repeats at most 50 times per claim
MAX_LINES_CEILING = 10_000  # the highest line limit a setting may choose (a claim body is refused beyond it unread)
MAX_CLAIM_BYTES = 64 * 1024  # one claim as JSON; a 50-line claim naming every level fits in a quarter of it
MAX_LEVELS_CEILING = 128  # a line's levels, refused unread beyond it; the real limit is one per vertebra of the graph
MAX_ID_LENGTH = 64  # X12 CLM01 (patient control number) holds 38 characters; room for local schemes
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # a numeric id must survive any JSON reader and writer
MAX_DIAGNOSES = 12  # CMS-1500 item 21 (A-L) and the 837P's HI segment (one principal and eleven other diagnoses)
MAX_DIAGNOSIS_POINTERS = 4  # per line: X12 837P SV107 (composite diagnosis code pointer) and CMS-1500 item 24E

ENV_MAX_CLAIM_LINES = "SPINEKG_MAX_CLAIM_LINES"
ENV_MAX_CLAIM_BYTES = "SPINEKG_MAX_CLAIM_BYTES"


def limit_from_env(name: str, default: int, minimum: int = 1, environ: Mapping[str, str] | None = None) -> int:
    """A positive whole-number limit from the environment, or ``default`` when the variable is unset."""
    value = (os.environ if environ is None else environ).get(name, "").strip()
    if not value:
        return default
    if not (value.isascii() and value.isdigit() and len(value) <= 12) or int(value) < minimum:
        raise InputError(name, f"{value[:20]!r} is not a whole number of at least {minimum}")
    return int(value)


def claim_limits(max_lines: int | None = None, max_bytes: int | None = None) -> tuple[int, int]:
    """Lines per claim and bytes per claim: the given values, else SPINEKG_MAX_CLAIM_LINES and
    SPINEKG_MAX_CLAIM_BYTES, else MAX_CLAIM_LINES and MAX_CLAIM_BYTES (what ``spinekg validate`` uses)."""
    return (
        max_lines or limit_from_env(ENV_MAX_CLAIM_LINES, MAX_CLAIM_LINES),
        max_bytes or limit_from_env(ENV_MAX_CLAIM_BYTES, MAX_CLAIM_BYTES),
    )
