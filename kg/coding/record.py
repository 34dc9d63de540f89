"""The procedure record: what was documented, as structured JSON (spinekg code FILE, POST /coding), or as
the note reader extracts it from an operative note. Parsed here into plain dataclasses, or an InputError
naming the field. The accepted values of the enumerated fields (device, approach, access, imaging,
injections, fracture imaging) are the values of the note terms in the graph, so a new device is data."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from spinekg.kg.claims.parse import parse_date, show
from spinekg.kg.coding.tables import CodingTables
from spinekg.kg.errors import InputError

MAX_TREATMENTS = 64  # every vertebra twice (a body named with two procedures) and then some
MAX_BIOPSIES = 32
MAX_IMAGING = 8
MAX_DIAGNOSES = 12  # CMS-1500 box 21 A-L, the 837P's HI segment
MAX_TEXT = 64  # characters of a short text field (a state, a contractor number, a diagnosis code)
MAX_MINUTES = 24 * 60
RECORD_KEYS = (
    "date_of_service",
    "place_of_service",
    "state",
    "contractor",
    "diagnoses",
    "treatments",
    "biopsies",
    "imaging",
    "sacroplasty",
    "sedation",
    "anesthesia_by_other_provider",
    "necessity",
)
TREATMENT_KEYS = ("level", "cavity_created", "device", "approach", "access")
BIOPSY_KEYS = ("level", "same_access")
SACROPLASTY_KEYS = ("injections", "levels")
SEDATION_KEYS = ("minutes", "independent_observer")
NECESSITY_KEYS = ("failed_conservative_care", "pain_score", "fracture_imaging")


@dataclass
class Treatment:
    level: str | None = None
    cavity_created: bool | None = None
    device: str | None = None
    approach: str | None = None  # unilateral | bilateral (the laterality terms' values)
    access: str | None = None  # transpedicular, parapedicular, ... (the access terms' values)


@dataclass
class Biopsy:
    level: str | None = None
    same_access: bool | None = None


@dataclass
class Sacroplasty:
    injections: str | None = None
    levels: list[str] = field(default_factory=list)


@dataclass
class Sedation:
    minutes: int | None = None
    independent_observer: bool | None = None


@dataclass
class Necessity:
    failed_conservative_care: bool | None = None
    pain_score: int | None = None
    fracture_imaging: str | None = None


@dataclass
class ProcedureRecord:
    date_of_service: date | None = None
    place_of_service: str | None = None
    state: str | None = None
    contractor: str | None = None
    diagnoses: list[str] = field(default_factory=list)
    treatments: list[Treatment] = field(default_factory=list)
    biopsies: list[Biopsy] = field(default_factory=list)
    imaging: list[str] = field(default_factory=list)
    sacroplasty: Sacroplasty | None = None
    sedation: Sedation | None = None
    anesthesia_by_other_provider: bool = False
    necessity: Necessity = field(default_factory=Necessity)

    def as_json(self) -> dict[str, Any]:
        """The record as structured input: what the note reader extracted can be corrected and sent back."""
        out: dict[str, Any] = {}
        if self.date_of_service is not None:
            out["date_of_service"] = self.date_of_service.isoformat()
        for name in ("place_of_service", "state", "contractor"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.diagnoses:
            out["diagnoses"] = list(self.diagnoses)
        out["treatments"] = [_compact(t.__dict__) for t in self.treatments]
        out["biopsies"] = [_compact(b.__dict__) for b in self.biopsies]
        out["imaging"] = list(self.imaging)
        out["sacroplasty"] = None if self.sacroplasty is None else _compact(self.sacroplasty.__dict__)
        if self.sedation is not None:
            out["sedation"] = _compact(self.sedation.__dict__)
        if self.anesthesia_by_other_provider:
            out["anesthesia_by_other_provider"] = True
        necessity = _compact(self.necessity.__dict__)
        if necessity:
            out["necessity"] = necessity
        return out


def _compact(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None and v != []}


def refuse_unknown(obj: dict[str, Any], known: tuple[str, ...], where: str, what: str) -> None:
    for key in obj:
        if key not in known:
            name = key if isinstance(key, str) and 0 < len(key) <= 40 and key.isprintable() else show(key)
            near = difflib.get_close_matches(str(key)[:40], known, n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            raise InputError(f"{where}{name}", f"not a field of {what}; {hint}known: {', '.join(known)}")


class RecordParser:
    """Parses structured input against the vocabulary of the graph (levels, devices, sides, modalities)."""

    def __init__(self, tables: CodingTables, levels_hint: str = "") -> None:
        self.tables = tables
        self.levels_hint = levels_hint  # the vertebrae by region, as the claim validator words them
        self.devices = {v.lower(): v for v in tables.values("cavity")}
        self.device_cavity = {
            t.value.lower(): bool(t.creates_cavity) for t in tables.terms.values() if t.slot == "cavity" and t.value
        }
        self.sides = {v.lower(): v for v in tables.values("laterality")}
        self.accesses = {v.lower(): v for v in tables.values("access")}
        self.modalities = {v.lower(): v for v in tables.values("imaging")}
        self.fracture_imaging = {v.lower(): v for v in tables.values("fracture-imaging")}

    def parse(self, obj: Any) -> ProcedureRecord:
        if not isinstance(obj, dict):
            raise InputError("record", "a procedure record is a JSON object (treatments, biopsies, imaging, sacroplasty, ...)")
        refuse_unknown(obj, RECORD_KEYS, "", "a procedure record")
        record = ProcedureRecord()
        dos = obj.get("date_of_service")
        if dos is not None:
            record.date_of_service = parse_date(dos, "date_of_service")
        record.place_of_service = self._text(obj.get("place_of_service"), "place_of_service")
        record.state = self._text(obj.get("state"), "state")
        record.contractor = self._text(obj.get("contractor"), "contractor")
        diagnoses = self._list(obj.get("diagnoses"), "diagnoses", MAX_DIAGNOSES)
        record.diagnoses = [self._text(d, f"diagnoses[{i}]", required=True) or "" for i, d in enumerate(diagnoses)]
        for i, raw in enumerate(self._list(obj.get("treatments"), "treatments", MAX_TREATMENTS)):
            record.treatments.append(self._treatment(raw, f"treatments[{i}]"))
        for i, raw in enumerate(self._list(obj.get("biopsies"), "biopsies", MAX_BIOPSIES)):
            where = f"biopsies[{i}]"
            if not isinstance(raw, dict):
                raise InputError(where, 'a biopsy is an object such as {"level": "L1"}')
            refuse_unknown(raw, BIOPSY_KEYS, f"{where}.", "a biopsy")
            record.biopsies.append(
                Biopsy(self.level(raw.get("level"), f"{where}.level"), self._bool(raw.get("same_access"), f"{where}.same_access"))
            )
        for i, raw in enumerate(self._list(obj.get("imaging"), "imaging", MAX_IMAGING)):
            value = self._choice(raw, self.modalities, f"imaging[{i}]", "an imaging modality")
            if value is not None and value not in record.imaging:
                record.imaging.append(value)
        sacro = obj.get("sacroplasty")
        if sacro is not None:
            if not isinstance(sacro, dict):
                raise InputError("sacroplasty", 'sacroplasty is null or an object such as {"injections": "bilateral"}')
            refuse_unknown(sacro, SACROPLASTY_KEYS, "sacroplasty.", "sacroplasty")
            levels = self._list(sacro.get("levels"), "sacroplasty.levels", len(self.tables.vertebrae))
            record.sacroplasty = Sacroplasty(
                self._choice(sacro.get("injections"), self.sides, "sacroplasty.injections", "a side"),
                [lv for i, raw in enumerate(levels) if (lv := self.level(raw, f"sacroplasty.levels[{i}]", required=True))],
            )
        sedation = obj.get("sedation")
        if sedation is not None:
            if not isinstance(sedation, dict):
                raise InputError(
                    "sedation", 'sedation is null or an object such as {"minutes": 25, "independent_observer": true}'
                )
            refuse_unknown(sedation, SEDATION_KEYS, "sedation.", "sedation")
            record.sedation = Sedation(
                self._int(sedation.get("minutes"), "sedation.minutes", 0, MAX_MINUTES),
                self._bool(sedation.get("independent_observer"), "sedation.independent_observer"),
            )
        record.anesthesia_by_other_provider = bool(
            self._bool(obj.get("anesthesia_by_other_provider"), "anesthesia_by_other_provider")
        )
        necessity = obj.get("necessity")
        if necessity is not None:
            if not isinstance(necessity, dict):
                raise InputError("necessity", "necessity is an object (failed_conservative_care, pain_score, fracture_imaging)")
            refuse_unknown(necessity, NECESSITY_KEYS, "necessity.", "necessity")
            record.necessity = Necessity(
                self._bool(necessity.get("failed_conservative_care"), "necessity.failed_conservative_care"),
                self._int(necessity.get("pain_score"), "necessity.pain_score", 0, 10),
                self._choice(
                    necessity.get("fracture_imaging"),
                    self.fracture_imaging,
                    "necessity.fracture_imaging",
                    "a fracture imaging modality",
                ),
            )
        return record

    def _treatment(self, raw: Any, where: str) -> Treatment:
        if not isinstance(raw, dict):
            raise InputError(where, 'a treatment is an object such as {"level": "T7", "cavity_created": true}')
        refuse_unknown(raw, TREATMENT_KEYS, f"{where}.", "a treatment")
        treatment = Treatment(
            level=self.level(raw.get("level"), f"{where}.level"),
            cavity_created=self._bool(raw.get("cavity_created"), f"{where}.cavity_created"),
            device=self._choice(raw.get("device"), self.devices, f"{where}.device", "a cavity device"),
            approach=self._choice(raw.get("approach"), self.sides, f"{where}.approach", "a side"),
            access=self._choice(raw.get("access"), self.accesses, f"{where}.access", "an access route"),
        )
        if treatment.cavity_created is None and self.device_creates_cavity(treatment.device):
            treatment.cavity_created = True  # a documented cavity device documents the cavity (R12)
        return treatment

    def device_creates_cavity(self, device: str | None) -> bool | None:
        return None if device is None else self.device_cavity.get(device.lower())

    def level(self, raw: Any, where: str, required: bool = False) -> str | None:
        if raw is None and not required:
            return None
        name = (
            self.tables.spellings.get(raw.strip().upper()) if isinstance(raw, str) and len(raw) <= 16 and raw.isascii() else None
        )
        if name is None:
            raise InputError(where, f"{show(raw)} is not a vertebra" + (f" ({self.levels_hint})" if self.levels_hint else ""))
        return name

    @staticmethod
    def _list(raw: Any, where: str, limit: int) -> list[Any]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise InputError(where, "a list is expected")
        if len(raw) > limit:
            raise InputError(where, f"{len(raw)} items; at most {limit}")
        return raw

    @staticmethod
    def _bool(raw: Any, where: str) -> bool | None:
        if raw is None or isinstance(raw, bool):
            return raw
        raise InputError(where, f"{show(raw)} is not true, false or null")

    @staticmethod
    def _int(raw: Any, where: str, low: int, high: int) -> int | None:
        if raw is None:
            return None
        if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
            raise InputError(where, f"{show(raw)} is not a whole number from {low} to {high}")
        return raw

    @staticmethod
    def _text(raw: Any, where: str, required: bool = False) -> str | None:
        if raw is None and not required:
            return None
        if not isinstance(raw, str) or not raw.strip() or len(raw) > MAX_TEXT or not raw.isprintable():
            raise InputError(where, f"{show(raw)} is not a short text (at most {MAX_TEXT} printable characters)")
        return raw.strip()

    @staticmethod
    def _choice(raw: Any, allowed: dict[str, str], where: str, what: str) -> str | None:
        if raw is None:
            return None
        value = allowed.get(raw.strip().lower()) if isinstance(raw, str) and len(raw) <= MAX_TEXT else None
        if value is None:
            raise InputError(where, f"{show(raw)} is not {what}; use one of: {', '.join(allowed.values())}")
        return value
