"""The NCCI table layouts, as data: how each header names its columns, and how a file's kind is told.

A file is recognised by its header row, wherever it stands among the notice lines CMS puts first.
Header cells are compared after lower-casing and dropping everything but letters, digits, ``*`` and
``=``, so that CMS's wrapped ``"HCPCS/\\nCPT Code"`` and the copies' ``hcpcs_cpt_code`` are the same
name, and so are ``Column 1`` and ``column_1``. Each role lists the names that fill it (regular
expressions over the compared form); a layout is the first whose required roles are all found.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HEADER_SCAN_ROWS = 60  # notice lines before the header: CMS uses up to six; the header must come by this row


@dataclass(frozen=True)
class Layout:
    family: str  # ptp | mue | aoc
    description: str
    roles: dict[str, str]  # role -> regular expression over the compared header name
    required: frozenset[str]
    key_role: str  # blank in the header's continuation lines (CMS wraps the PTP header over four lines)


LAYOUTS: tuple[Layout, ...] = (
    Layout(
        "ptp",
        "PTP edits: CMS's ccipra/ccioph TXT (Column 1, Column 2, *=in existence prior to 1996, Effective Date, "
        "Deletion Date, Modifier, PTP Edit Rationale) or the shared copy (column_1, column_2, "
        "[in_existence_prior_to_1996], deletion_date, modifier_indicator, ptp_edit_rationale)",
        {
            "column1": r"column1",
            "column2": r"column2",
            "prior_1996": r"\*=inexistence.*|inexistence.*",
            "effective": r"effective(date)?",
            "deletion": r"deletion(date)?",
            "modifier": r"modifier(indicator)?",
            "rationale": r"(ptpedit)?rationale",
        },
        frozenset({"column1", "column2", "deletion", "modifier", "rationale"}),
        "column1",
    ),
    Layout(
        "mue",
        "MUEs: CMS's MCR_MUE_<service>Services CSV (HCPCS/CPT Code, <service> Services MUE Values, MUE Adjudication "
        "Indicator, MUE Rationale) or the shared copy (service_type, hcpcs_cpt_code, mue_value, "
        "mue_adjudication_indicator, mue_rationale)",
        {
            "service_type": r"servicetype",
            "code": r"hcpcscptcode|hcpcscpt",
            "value": r"[a-z]*muevalues?",
            "mai": r"mueadjudicationindicator|mai",
            "rationale": r"muerationale",
        },
        frozenset({"code", "value", "mai", "rationale"}),
        "code",
    ),
    Layout(
        "aoc",
        "add-on code edits: CMS's AOC_V<year>Q<quarter>-MCR TXT/xlsx (AOC_Edit_Type, Add-On_Code, AOC_DelDT, "
        "Primary_Code, Primary_Code_DelDT, AOC_Edit_EffDT, AOC_Edit_DelDT, Special_Instruction_Notes)",
        {
            "type": r"aocedittype",
            "addon": r"addoncode",
            "addon_deletion": r"aocdeldt",
            "primary": r"primarycode",
            "primary_deletion": r"primarycodedeldt",
            "effective": r"aocediteffdt",
            "deletion": r"aoceditdeldt",
            "note": r"specialinstructionnotes",
        },
        frozenset({"type", "addon", "primary", "effective"}),
        "addon",
    ),
)

# the settings of PTP tables, told by CMS's file prefix or the copies' names (checked in this order)
PTP_SETTINGS: tuple[tuple[str, str], ...] = (
    ("outpatient", r"ccioph|outpatient|hospital|opps"),
    ("practitioner", r"ccipra|practitioner"),
)
SETTINGS = ("practitioner", "outpatient")

# MUE service types as CMS names them (header "Practitioner Services MUE Values", column service_type)
MUE_SERVICE_TYPES: dict[str, str] = {
    "practitioner": "practitioner",
    "outpatienthospital": "outpatient",
    "dmesupplier": "dme",
}
SERVICE_TYPES = ("practitioner", "outpatient", "dme")

# the tables of the store, one folder each under <cache>/ncci/
PTP_KINDS = {setting: f"ptp-{setting}" for setting in SETTINGS}
MUE_KINDS = {service: f"mue-{service}" for service in SERVICE_TYPES}
AOC_KIND = "aoc"
KINDS: tuple[str, ...] = (*PTP_KINDS.values(), *MUE_KINDS.values(), AOC_KIND)

# the add-on file's "primary code" of a type 2 edit, whose primaries the contractor defines
CONTRACTOR_DEFINED = "CCCCC"

_NOT_NAME = re.compile(r"[^a-z0-9*=]")


def header_name(cell: str) -> str:
    """A header cell in the compared form.

    >>> header_name("HCPCS/\\nCPT Code"), header_name("hcpcs_cpt_code"), header_name("Column 1")
    ('hcpcscptcode', 'hcpcscptcode', 'column1')
    """
    return _NOT_NAME.sub("", cell.lower())


@dataclass(frozen=True)
class Header:
    layout: Layout
    columns: dict[str, int]  # role -> column index
    cells: tuple[str, ...]  # the compared names, for service types told by the header

    @property
    def family(self) -> str:
        return self.layout.family


def recognise(cells: list[str]) -> Header | None:
    """The layout a row is the header of, with the column of each role; None if it is no header."""
    names = tuple(header_name(c) for c in cells)
    for layout in LAYOUTS:
        columns: dict[str, int] = {}
        for role, pattern in layout.roles.items():
            regex = re.compile(pattern)
            for index, name in enumerate(names):
                if name and index not in columns.values() and regex.fullmatch(name):
                    columns[role] = index
                    break
        if layout.required <= columns.keys():
            return Header(layout, columns, names)
    return None


def mue_service_of(name: str) -> str | None:
    """The service type a header cell or a service_type value names (practitioner, outpatient, dme)."""
    compared = header_name(name)
    for key, service in MUE_SERVICE_TYPES.items():
        if compared.startswith(key):
            return service
    return None


def ptp_setting_of(name: str) -> str | None:
    """The setting a PTP file name tells, or None."""
    lowered = name.lower()
    for setting, pattern in PTP_SETTINGS:
        if re.search(pattern, lowered):
            return setting
    return None
