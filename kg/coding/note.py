"""The note reader: an operative-note paragraph in, a procedure record out, with the character spans each
value came from. Deterministic and small: a tokenizer, a longest-match phrase table built from the graph's
note terms (ontology/note-terms.ttl), the graph's vertebra names, and NegEx-style cue windows. No phrase,
device, modality or cue is written here; the slots it fills are the fields of the procedure record.

How levels are tied to what was done: in each sentence, levels separated only by list or range words
form a group ("T8, T9 and T10"; "L2 through L4"; "T12-L1"; "L2-4"). A group belongs to the action words
(procedure, cavity, cement, treated, biopsy, access) of the stretch of the sentence it governs: the words
right after it ("L1 kyphoplasty"), else those before it back to the previous group ("kyphoplasty at L1"),
else those after it ("at L3 and L4, cement was injected"), else those of the previous group ("... at T12 as
well as at L1"), else, for a bulleted item, those of its header line ("Levels treated:"). A word within a
negation, history or plan cue's window (and before the end of the cue's reach) does not count as done.

Every loop is bounded by the text: at most MAX_NOTE_CHARS characters, phrases of at most the longest
phrase's length, cue windows of a few words, ranges of at most the number of vertebrae."""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from spinekg.kg.claims.parse import show
from spinekg.kg.coding.record import (
    MAX_BIOPSIES,
    MAX_DIAGNOSES,
    MAX_TREATMENTS,
    Biopsy,
    Necessity,
    ProcedureRecord,
    RecordParser,
    Sacroplasty,
    Sedation,
    Treatment,
)
from spinekg.kg.coding.tables import CodingTables
from spinekg.kg.errors import InputError

MAX_NOTE_CHARS = 20_000  # an operative note is a few kilobytes; a pathological one this long reads in ~0.4 s
MAX_NOT_USED = 50  # level mentions reported as not used: enough to show a coder, bounded for any note
MAX_SPANS = 20  # spans reported per extracted value
MAX_PARENTHESIS = 40  # tokens a parenthesis after a level group may hold and still qualify it
# tokens: decimals, runs of letters and digits, and any other single character
TOKEN = re.compile(r"\d+\.\d+|[A-Za-z0-9]+|[^\sA-Za-z0-9]")
# an ICD-10-CM code as notes write it: a letter, two characters, a dot and one to four more (the dot keeps
# vertebra names such as T12 out); whether it is a real, billable code is the claim rules' business
DIAGNOSIS = re.compile(r"(?<![A-Za-z0-9.])([A-TV-Z][0-9][0-9AB]\.[0-9A-TV-Z]{1,4})(?![A-Za-z0-9])")
DATE = re.compile(r"\s*[:\-]?\s*(\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{4})")
BULLET = frozenset("-*\u2022")

ACTION = frozenset({"procedure", "cavity", "cement", "treated", "biopsy", "access-tool"})
TREATMENT = frozenset({"procedure", "cavity", "cement", "treated"})
STRONG = frozenset({"procedure", "cavity", "cement"})  # documents a treatment even in a sentence without a level
PRE_CUES = {
    "negation-before": "negated",
    "history": "an earlier procedure",
    "hypothetical-before": "planned or proposed, not performed",
}
POST_CUES = {"negation-after": "negated", "hypothetical-after": "planned or proposed, not performed"}
CUES = frozenset({*PRE_CUES, *POST_CUES, "scope-end", "range", "list", "time-unit", "service-date", "sedation-time"})
DEFAULT_WINDOW = 5


# Characters a note pasted from an EHR may carry inside words (zero-width spaces, direction marks, escape
# sequences' control characters): read through, so "T\u200b12" is T12, while spans still point into the text.
_INVISIBLE = frozenset(("Cf", "Cc"))
_KEPT_CONTROLS = frozenset("\n\r\t")
_TERMINAL_ESCAPE = re.compile(r"\x1b\[[0-9;?]{0,16}[A-Za-z]")  # colour codes copied from a terminal


def _tokens(text: str, letters: frozenset[str] = frozenset()) -> list[Token]:
    """The tokens of a note, over the text with invisible characters left out; offsets are the note's own.
    A vertebra written with a space or hyphen between its letter and number ("T-12", "L 1") is one token:
    ``letters`` are the upper-case letters the graph's vertebra names start with, then at most two digits."""
    hidden = {i for m in _TERMINAL_ESCAPE.finditer(text) for i in range(m.start(), m.end())} if "\x1b" in text else set()
    keep = [
        i for i, ch in enumerate(text) if i not in hidden and (ch in _KEPT_CONTROLS or unicodedata.category(ch) not in _INVISIBLE)
    ]
    if len(keep) == len(text):
        clean, origin = text, None
    else:
        clean = "".join(text[i] for i in keep)
        origin = [*keep, len(text)]
    found = [(m.group(), m.start(), m.end()) for m in TOKEN.finditer(clean)]
    joined: list[tuple[str, int, int]] = []
    i = 0
    while i < len(found):
        word, start, end = found[i]
        if word.upper() in letters and len(word) == 1 and (start == 0 or not clean[start - 1].isalnum()):
            j = i + 1
            if j < len(found) and found[j][0] == "-" and found[j][1] == end:
                j += 1
            if j < len(found) and found[j][0].isdigit() and len(found[j][0]) <= 2 and found[j][1] - end <= 1:
                following = found[j][2]
                if following == len(clean) or not clean[following].isalnum():
                    joined.append((word.upper() + found[j][0], start, following))
                    i = j + 1
                    continue
        joined.append((word, start, end))
        i += 1
    if origin is None:
        return [Token(word, start, end, 0) for word, start, end in joined]
    return [Token(word, origin[start], origin[end - 1] + 1, 0) for word, start, end in joined]


@dataclass(slots=True)
class Token:
    text: str
    start: int
    end: int
    newline: int  # line breaks between the previous token and this one


@dataclass
class Mark:
    """A phrase of the note matched to terms (or a vertebra name), over tokens [start, end)."""

    start: int
    end: int
    terms: list[str]
    level: str | None = None
    blocked: str | None = None  # why it does not count as done: negated, an earlier procedure, planned
    cue: Mark | None = None  # the cue that blocked it


@dataclass
class Group:
    levels: list[str]
    spans: dict[str, list[tuple[int, int]]]
    start: int
    end: int
    owned: list[Mark] = field(default_factory=list)
    after: list[Mark] = field(default_factory=list)  # the words after it, up to the next group
    before: list[Mark] = field(default_factory=list)  # the words before it, back to the previous group
    annex: list[Mark] = field(default_factory=list)  # a parenthesis right after it: "L2 (bilateral, with biopsy)"
    annex_end: int = 0
    how: str = ""


@dataclass
class Sentence:
    tokens: range
    marks: list[Mark] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    bullet: bool = False
    header: bool = False  # ends with a colon: its bulleted items inherit its action words


class NoteReader:
    def __init__(self, tables: CodingTables, parser: RecordParser) -> None:
        # the letters vertebra names start with (C, T, L, S in the graph), for "T-12" and "L 1"
        self.level_letters = frozenset(k[0] for k in tables.spellings if len(k) > 1 and k[0].isalpha() and k[1:].isdigit())
        self.tables = tables
        self.parser = parser
        self.terms = tables.terms
        self.folded: dict[tuple[str, ...], list[str]] = {}  # phrases matched in any case
        self.exact: dict[tuple[str, ...], list[str]] = {}  # all-capital abbreviations, matched as written
        for phrase, term in tables.phrases:
            words = tuple(TOKEN.findall(phrase))
            if not words:
                continue
            letters = [c for c in phrase if c.isalpha()]
            if len(letters) >= 2 and all(c.isupper() for c in letters):
                self.exact.setdefault(words, []).append(term)
            else:
                self.folded.setdefault(tuple(w.lower() for w in words), []).append(term)
        self.longest = max((len(k) for k in (*self.folded, *self.exact)), default=1)
        self.sacroplasty = tables.one("sacroplasty").codes_as

    # ------------------------------------------------------------------ reading

    def read(self, text: Any) -> tuple[ProcedureRecord, list[dict[str, Any]], list[dict[str, Any]]]:
        if not isinstance(text, str):
            raise InputError("text", f"the note is a string, not {show(text)}")
        if len(text) > MAX_NOTE_CHARS:
            raise InputError("text", f"{len(text)} characters; a note has at most {MAX_NOTE_CHARS}")
        tokens = _tokens(text, self.level_letters)
        for i in range(1, len(tokens)):
            tokens[i].newline = text.count("\n", tokens[i - 1].end, tokens[i].start)
        sentences = self._sentences(tokens)
        for sentence in sentences:
            self._mark(sentence, tokens)
            self._cues(sentence)
            self._groups(sentence, tokens)
        self._own(sentences, tokens)
        return _Extraction(self, text, tokens, sentences).record()

    def _sentences(self, tokens: list[Token]) -> list[Sentence]:
        out: list[Sentence] = []
        start = 0
        for i, tok in enumerate(tokens):
            if i > start and self._breaks_before(tokens, i):
                out.append(self._sentence(tokens, start, i))
                start = i
            abbreviation = tok.text == "." and i > 0 and len(tokens[i - 1].text) == 1 and tokens[i - 1].text.isalpha()
            if tok.text in ".;!?" and not abbreviation:  # "e.g." and "i.e." go on
                out.append(self._sentence(tokens, start, i + 1))
                start = i + 1
        if start < len(tokens):
            out.append(self._sentence(tokens, start, len(tokens)))
        return [s for s in out if len(s.tokens)]

    @staticmethod
    def _breaks_before(tokens: list[Token], i: int) -> bool:
        """A line break ends a sentence at a blank line, before a bulleted or numbered item or a
        'Header:' line, and after a line ending in a colon; a wrapped line goes on."""
        tok = tokens[i]
        if tok.newline == 0:
            return False
        if tok.newline > 1 or tokens[i - 1].text == ":" or tok.text in BULLET:
            return True
        following = [t.text for t in tokens[i : i + 6]]
        if tok.text.isdigit() and len(following) > 1 and following[1] in ").":
            return True
        return ":" in following[1:5] and tok.text[:1].isupper()

    @staticmethod
    def _sentence(tokens: list[Token], start: int, end: int) -> Sentence:
        sentence = Sentence(range(start, end))
        sentence.bullet = tokens[start].text in BULLET
        last = end - 1
        while last > start and tokens[last].text in ".;":
            last -= 1
        sentence.header = tokens[last].text == ":"
        return sentence

    def _mark(self, sentence: Sentence, tokens: list[Token]) -> None:
        """Longest-match phrases, then vertebra names among the words no phrase took."""
        i, end = sentence.tokens.start, sentence.tokens.stop
        while i < end:
            found: Mark | None = None
            for n in range(min(self.longest, end - i), 0, -1):
                words = tuple(t.text for t in tokens[i : i + n])
                terms = self.exact.get(words) or self.folded.get(tuple(w.lower() for w in words))
                if terms:
                    found = Mark(i, i + n, list(terms))
                    break
            if found is None:
                level = self._level(tokens, i)
                if level is not None:
                    found = Mark(i, i + 1, [], level=level)
            if found is not None:
                sentence.marks.append(found)
                i = found.end
            else:
                i += 1

    def _level(self, tokens: list[Token], i: int) -> str | None:
        word = tokens[i].text
        if word in self.tables.written or (any(c.isdigit() for c in word) and word[:1].isalpha()) or len(word) > 3:
            name = self.tables.spellings.get(word.upper())
        else:
            return None
        # a level name without digits followed by a hyphen is a word (Co-morbid), not the coccyx
        if name is not None and not any(c.isdigit() for c in word) and i + 1 < len(tokens) and tokens[i + 1].text == "-":
            return None
        return name

    def _slots(self, mark: Mark) -> set[str]:
        return {self.terms[t].slot for t in mark.terms}

    def _window(self, mark: Mark) -> int:
        windows = [w for t in mark.terms if (w := self.terms[t].window)]
        return max(windows) if windows else DEFAULT_WINDOW

    def _cues(self, sentence: Sentence) -> None:
        """NegEx-style: a pre-cue reaches the terms within its window after it, a post-cue those within
        its window before it, never past a scope end."""
        marks = sentence.marks
        ends = [i for i, m in enumerate(marks) if "scope-end" in self._slots(m) and not self._between_levels(marks, i)]
        for ci, cue in enumerate(marks):
            slots = self._slots(cue)
            pre = next((PRE_CUES[s] for s in slots if s in PRE_CUES), None)
            post = next((POST_CUES[s] for s in slots if s in POST_CUES), None)
            if pre is None and post is None:
                continue
            window = self._window(cue)
            if pre is not None:
                for mi in range(ci + 1, len(marks)):
                    target = marks[mi]
                    if target.start - cue.end > window or mi in ends:
                        break
                    if target.terms and not (self._slots(target) & CUES):
                        target.blocked, target.cue = target.blocked or pre, target.cue or cue
            if post is not None:
                for mi in range(ci - 1, -1, -1):
                    target = marks[mi]
                    if cue.start - target.end > window or mi in ends:
                        break
                    if target.terms and not (self._slots(target) & CUES):
                        target.blocked, target.cue = target.blocked or post, target.cue or cue

    def _between_levels(self, marks: list[Mark], i: int) -> bool:
        return 0 < i < len(marks) - 1 and marks[i - 1].level is not None and marks[i + 1].level is not None

    def _groups(self, sentence: Sentence, tokens: list[Token]) -> None:
        """Levels separated only by list or range words form one group; a range is expanded."""
        marks = sentence.marks
        i = 0
        while i < len(marks):
            if marks[i].level is None:
                i += 1
                continue
            first = marks[i]
            group = Group([], {}, first.start, first.end)
            self._add(group, first.level or "", tokens[first.start])
            j = i + 1
            while j < len(marks):
                separators = []
                k = j
                while (
                    k < len(marks)
                    and marks[k].level is None
                    and self._slots(marks[k]) & {"list", "range"}
                    and marks[k].start == marks[k - 1].end
                ):
                    separators.append(marks[k])
                    k += 1
                is_range = any("range" in self._slots(s) for s in separators) and not any(
                    "list" in self._slots(s) for s in separators
                )
                if k < len(marks) and marks[k].level is not None and separators and marks[k].start - marks[k - 1].end <= 1:
                    if is_range:
                        self._expand(
                            group,
                            group.levels[-1],
                            marks[k].level or "",
                            tokens[marks[k - len(separators) - 1].start],
                            tokens[marks[k].start],
                        )
                    else:
                        self._add(group, marks[k].level or "", tokens[marks[k].start])
                    group.end = marks[k].end
                    j = k + 1
                    continue
                # "L2-4": a range to a bare number of the same region
                if is_range and len(separators) == 1 and separators[0].end < sentence.tokens.stop:
                    after = tokens[separators[0].end]
                    prefix = "".join(c for c in group.levels[-1] if c.isalpha())
                    name = self.tables.spellings.get((prefix + after.text).upper()) if after.text.isdigit() else None
                    if name is not None and separators[0].end == separators[0].start + 1:
                        self._expand(group, group.levels[-1], name, tokens[separators[0].start - 1], after)
                        group.end = separators[0].end + 1
                        j = k
                        continue
                break
            sentence.groups.append(group)
            i = j

    @staticmethod
    def _add(group: Group, level: str, token: Token) -> None:
        if level not in group.spans:
            group.levels.append(level)
        group.spans.setdefault(level, []).append((token.start, token.end))

    def _expand(self, group: Group, start: str, end: str, first: Token, token: Token) -> None:
        """Every level from ``start`` to ``end`` (a transitional level only when named); the levels
        between have the whole range as their span."""
        order = self.tables.vertebrae
        a, b = order[start], order[end]
        step = 1 if b >= a else -1
        for name in sorted(order, key=order.__getitem__, reverse=step < 0):
            index = order[name]
            if min(a, b) < index < max(a, b) and name not in self.tables.transitional:
                if name not in group.spans:
                    group.levels.append(name)
                group.spans.setdefault(name, []).append((first.start, token.end))
        self._add(group, end, token)

    def _annex(self, sentence: Sentence, starts: list[int], group: Group, tokens: list[Token]) -> None:
        """The words of a parenthesis that opens right after a group belong to it."""
        if group.end >= sentence.tokens.stop or tokens[group.end].text != "(":
            return
        stop = min(sentence.tokens.stop, group.end + 1 + MAX_PARENTHESIS)
        close = next((i for i in range(group.end + 1, stop) if tokens[i].text == ")"), None)
        if close is None:
            return
        first = bisect_left(starts, group.end + 1)
        if any(m.level is not None for m in sentence.marks[first : bisect_left(starts, close)]):
            return
        group.annex = [m for m in self._between(sentence, starts, group.end + 1, close) if m.level is None]
        group.annex_end = close + 1

    def _own(self, sentences: list[Sentence], tokens: list[Token]) -> None:
        """Tie each group to the action words of the stretch of its sentence it governs."""
        header: Sentence | None = None
        for sentence in sentences:
            if sentence.header:
                header = sentence
            elif not sentence.bullet:
                header = None
            starts = [m.start for m in sentence.marks]
            for group in sentence.groups:
                self._annex(sentence, starts, group, tokens)
            governing: Group | None = None
            for gi, group in enumerate(sentence.groups):
                before = max(sentence.groups[gi - 1].end, sentence.groups[gi - 1].annex_end) if gi else sentence.tokens.start
                after = sentence.groups[gi + 1].start if gi + 1 < len(sentence.groups) else sentence.tokens.stop
                following = self._between(sentence, starts, group.end, after)
                preceding = self._between(sentence, starts, before, group.start)
                group.before = preceding
                # the words before a re-mention of some of the group's levels qualify those levels
                # ("at T7, L3 and L4 (bilateral at T7)"), not the group
                nxt = sentence.groups[gi + 1] if gi + 1 < len(sentence.groups) else None
                group.after = [] if nxt is not None and set(nxt.levels) <= set(group.levels) else following
                # the first group of the sentence that has words of its own governs trailing coordinated
                # levels ("vertebroplasty of L2 ... with a biopsy of L2 ..., and of L6")
                if following and following[0].start == group.end and self._acts(following[0]):
                    group.owned, group.how = following, "the words right after it"
                elif any(self._acts(m) for m in preceding):
                    group.owned, group.how = preceding, "the words before it"
                elif any(self._acts(m) for m in following):
                    group.owned, group.how = following, "the words after it"
                elif governing is not None:
                    group.owned, group.how = governing.owned, "the words of the first levels of its sentence"
                elif sentence.bullet and header is not None:
                    group.owned, group.how = [m for m in header.marks if self._acts(m)], "its header line"
                if governing is None and group.owned:
                    governing = group

    @staticmethod
    def _between(sentence: Sentence, starts: list[int], low: int, high: int) -> list[Mark]:
        i = bisect_left(starts, low)
        out = []
        while i < len(starts) and starts[i] < high:
            mark = sentence.marks[i]
            if mark.level is None and mark.terms:
                out.append(mark)
            i += 1
        return out

    def _acts(self, mark: Mark) -> bool:
        return bool(self._slots(mark) & ACTION)


class _Extraction:
    """Turns the marked sentences into the record, the evidence (spans) and what was not used."""

    def __init__(self, reader: NoteReader, text: str, tokens: list[Token], sentences: list[Sentence]) -> None:
        self.r = reader
        self.text = text
        self.tokens = tokens
        self.sentences = sentences
        self.evidence: list[dict[str, Any]] = []
        self.not_used: list[dict[str, Any]] = []
        # level-less sentences: what they say applies to the whole note
        self.free = [m for s in sentences if not s.groups for m in s.marks if m.terms]
        # every mention of a level, in any sentence, whatever it is tied to
        self.mentions: dict[str, list[tuple[Sentence, Group]]] = {}
        for sentence in sentences:
            for group in sentence.groups:
                for level in group.levels:
                    self.mentions.setdefault(level, []).append((sentence, group))

    def span(self, mark: Mark) -> tuple[int, int]:
        return self.tokens[mark.start].start, self.tokens[mark.end - 1].end

    def phrase(self, mark: Mark) -> str:
        a, b = self.span(mark)
        return self.text[a:b]

    def note(self, field_name: str, value: Any, spans: list[tuple[int, int]]) -> None:
        spans = sorted(set(spans))[:MAX_SPANS]
        self.evidence.append(
            {"field": field_name, "value": value, "text": [self.text[a:b] for a, b in spans], "spans": [list(s) for s in spans]}
        )

    def slots(self, mark: Mark) -> set[str]:
        return self.r._slots(mark)

    def active(self, marks: list[Mark], slots: frozenset[str] | set[str]) -> list[Mark]:
        return [m for m in marks if m.blocked is None and self.slots(m) & slots]

    # ------------------------------------------------------------------ the record

    def record(self) -> tuple[ProcedureRecord, list[dict[str, Any]], list[dict[str, Any]]]:
        record = ProcedureRecord()
        treated: dict[str, dict[str, Any]] = {}  # level -> what tied it and where
        biopsied: dict[str, dict[str, Any]] = {}
        sacral: dict[str, dict[str, Any]] = {}
        accessed: dict[str, dict[str, Any]] = {}
        for sentence in self.sentences:
            for group in sentence.groups:
                self._classify(sentence, group, treated, biopsied, sacral, accessed)
        free_strong = self.active(self.free, STRONG)
        if free_strong and any(self._value(m, "procedure") != self.r.sacroplasty for m in free_strong):
            for level, info in accessed.items():
                treated.setdefault(level, info)
        if self._named_sacroplasty():
            # a named sacroplasty claims the cement of the sacral levels (the levels its codes cover)
            for level in [lv for lv in treated if (self.r.sacroplasty, lv) in self.r.tables.options]:
                sacral.setdefault(level, treated.pop(level))
        for level, info in list(treated.items())[:MAX_TREATMENTS]:
            record.treatments.append(self._treatment(len(record.treatments), level, info))
        if not treated:
            sacroplasty = bool(sacral or self._named_sacroplasty())
            strong = [
                m
                for m in free_strong
                if self._value(m, "procedure") != self.r.sacroplasty and not (sacroplasty and self.slots(m) <= {"cement"})
            ]
            if strong:
                info = {"spans": [], "owned": [], "sentence": []}
                record.treatments.append(self._treatment(0, None, info))
        self._sacroplasty(record, sacral)
        self._biopsies(record, biopsied)
        self._imaging(record)
        self._sedation(record)
        self._necessity(record)
        self._date(record)
        self._diagnoses(record)
        used = {t.level for t in record.treatments} | {b.level for b in record.biopsies}
        used |= set(record.sacroplasty.levels) if record.sacroplasty else set()
        self.not_used = [n for n in self.not_used if n["text"] not in used]
        return record, self.evidence, self.not_used

    def _classify(
        self,
        sentence: Sentence,
        group: Group,
        treated: dict[str, dict[str, Any]],
        biopsied: dict[str, dict[str, Any]],
        sacral: dict[str, dict[str, Any]],
        accessed: dict[str, dict[str, Any]],
    ) -> None:
        owned = group.owned + [m for m in group.annex if m not in group.owned]
        spans = {lv: group.spans[lv] for lv in group.levels}
        did_treat = self.active(owned, TREATMENT)
        did_biopsy = self.active(owned, {"biopsy"})
        if did_treat:
            target = sacral if any(self._value(m, "procedure") == self.r.sacroplasty for m in did_treat) else treated
            for level in group.levels:
                entry = target.setdefault(
                    level, {"owned": owned, "sentence": sentence, "group": group, "level": level, "spans": []}
                )
                entry["spans"].extend(spans[level])
        if did_biopsy:
            for level in group.levels:
                entry = biopsied.setdefault(
                    level, {"owned": owned, "sentence": sentence, "group": group, "level": level, "spans": []}
                )
                entry["spans"].extend(spans[level])
        if not did_treat and not did_biopsy:
            if self.active(owned, {"access-tool"}):
                for level in group.levels:
                    entry = accessed.setdefault(
                        level, {"owned": owned, "sentence": sentence, "group": group, "level": level, "spans": []}
                    )
                    entry["spans"].extend(spans[level])
                return
            blocked = [m for m in owned if m.blocked and self.slots(m) & ACTION]
            if blocked:
                cue = blocked[0].cue
                why = f"{blocked[0].blocked}: '{self.phrase(cue) if cue else ''}' with '{self.phrase(blocked[0])}'"
            else:
                why = "not tied to a procedure or biopsy in its sentence"
            for level in group.levels:
                if spans[level] and len(self.not_used) < MAX_NOT_USED:
                    self.not_used.append({"text": level, "spans": [list(s) for s in spans[level][:MAX_SPANS]], "why": why})

    def _value(self, mark: Mark, slot: str) -> str | None:
        for t in mark.terms:
            term = self.r.terms[t]
            if term.slot == slot and term.value:
                return term.value
        return None

    def _scopes(self, info: dict[str, Any], after: bool = False) -> list[list[Mark]]:
        """Where a body's technique is looked for: its own words (and, for the side and the access, the
        words after it), then the words of its other mentions that tie it to the same kind of action, then
        the unclaimed rest of its sentence, then the sentences that name no level."""
        sentence = info.get("sentence")
        group: Group | None = info.get("group")
        own = list(info.get("owned") or [])
        if group is not None:  # the words nearest the levels first ("..., plus a biopsy of a separate L5 lesion")
            own.sort(key=lambda m: group.start - m.end if m.end <= group.start else m.start - group.end)
        scopes = [own]
        if after and group is not None:
            scopes += [group.after, group.before]
        level = info.get("level")
        kind = self.slots_of(own)
        for _sentence, other in self.mentions.get(level or "", []):
            if other is group:
                continue
            theirs = self.slots_of(other.owned)
            same_kind = (
                (theirs & TREATMENT and kind & TREATMENT)
                or theirs & kind & {"biopsy"}
                or ("access-tool" in theirs and kind & TREATMENT)
            )
            if same_kind or not other.owned:
                scopes.append(other.owned + (other.after + other.before if after else []))
        if isinstance(sentence, Sentence):
            claimed = {id(m) for g in sentence.groups if g is not group for m in (*g.owned, *g.annex, *g.after, *g.before)}
            scopes.append([m for m in sentence.marks if m.terms and id(m) not in claimed])
        scopes.append(self.free)
        return scopes

    def slots_of(self, marks: list[Mark]) -> set[str]:
        return {slot for m in marks if m.blocked is None for slot in self.slots(m)}

    def _cavity(self, info: dict[str, Any]) -> tuple[bool | None, str | None, Mark | None]:
        """Cavity created? A cavity device documented (3) beats an explicit 'no cavity' (2), which beats
        the procedure's name (1); nearer scopes win ties."""
        best: tuple[int, int, bool | None, str | None, Mark | None] = (0, 0, None, None, None)
        for distance, scope in enumerate(self._scopes(info)):
            for mark in scope:
                for t in mark.terms:
                    term = self.r.terms[t]
                    if term.creates_cavity is None:
                        continue
                    if term.slot == "cavity":
                        rank, value = (3, True) if mark.blocked is None else (2 if mark.blocked == "negated" else 0, False)
                    elif term.slot == "procedure" and mark.blocked is None:
                        rank, value = 1, bool(term.creates_cavity)
                    else:
                        continue
                    # ties: the nearer scope; then a cavity (augmentation includes the cement injection); then a named device
                    device = term.value if term.slot == "cavity" and value else None
                    if rank and (rank, -distance, value is True, device is not None) > (
                        best[0],
                        -best[1],
                        best[2] is True,
                        best[3] is not None,
                    ):
                        best = (rank, distance, value, device, mark)
        return best[2], best[3], best[4]

    def _first(self, info: dict[str, Any], slot: str) -> tuple[str | None, Mark | None]:
        for scope in self._scopes(info, after=True):
            for mark in scope:
                if mark.blocked is None:
                    value = self._value(mark, slot)
                    if value:
                        return value, mark
        return None, None

    def _treatment(self, index: int, level: str | None, info: dict[str, Any]) -> Treatment:
        where = f"treatments[{index}]"
        cavity, device, cavity_mark = self._cavity(info)
        approach, side_mark = self._first(info, "laterality")
        access, access_mark = self._first(info, "access")
        treatment = Treatment(level, cavity, device, approach, access)
        if level is not None:
            self.note(f"{where}.level", level, info["spans"])
        for name, value, mark in (
            ("cavity_created", cavity, cavity_mark),
            ("device", device, cavity_mark),
            ("approach", approach, side_mark),
            ("access", access, access_mark),
        ):
            if value is not None and mark is not None:
                self.note(f"{where}.{name}", value, [self.span(mark)])
        return treatment

    def _named_sacroplasty(self) -> list[Mark]:
        return [
            m for s in self.sentences for m in s.marks if m.blocked is None and self._value(m, "procedure") == self.r.sacroplasty
        ]

    def _sacroplasty(self, record: ProcedureRecord, sacral: dict[str, dict[str, Any]]) -> None:
        named = self._named_sacroplasty()
        if not named and not sacral:
            return
        info = next(iter(sacral.values())) if sacral else {"owned": named[:1], "sentence": None}
        side, mark = self._first(info, "laterality")
        record.sacroplasty = Sacroplasty(side, list(sacral))
        for level, entry in sacral.items():
            self.note("sacroplasty.levels", level, entry["spans"])
        if side is not None and mark is not None:
            self.note("sacroplasty.injections", side, [self.span(mark)])
        if named:
            self.note("sacroplasty", self.r.sacroplasty, [self.span(m) for m in named])

    def _biopsies(self, record: ProcedureRecord, biopsied: dict[str, dict[str, Any]]) -> None:
        for level, info in list(biopsied.items())[:MAX_BIOPSIES]:
            same = self._same_access(info)
            where = f"biopsies[{len(record.biopsies)}]"
            record.biopsies.append(Biopsy(level, same[0]))
            self.note(f"{where}.level", level, info["spans"])
            if same[1] is not None:
                self.note(f"{where}.same_access", same[0], [self.span(same[1])])
        claimed = {id(m) for s in self.sentences for g in s.groups for m in (*g.owned, *g.annex)}
        for sentence in self.sentences:
            loose = [m for m in self.active(sentence.marks, {"biopsy"}) if id(m) not in claimed]
            if (
                loose
                and not any(self.active(g.owned, {"biopsy"}) for g in sentence.groups)
                and len(record.biopsies) < MAX_BIOPSIES
            ):
                same = self._same_access({"owned": sentence.marks, "sentence": None})
                if same[1] is None and any(b.level is not None for b in record.biopsies):
                    continue  # "Specimens were sent to pathology": the biopsy already recorded
                if any(b.level is None and b.same_access == same[0] for b in record.biopsies):
                    continue
                where = f"biopsies[{len(record.biopsies)}]"
                record.biopsies.append(Biopsy(None, same[0]))
                self.note(where, "biopsy without a level", [self.span(loose[0])])
                if same[1] is not None:
                    self.note(f"{where}.same_access", same[0], [self.span(same[1])])

    def _same_access(self, info: dict[str, Any]) -> tuple[bool | None, Mark | None]:
        scopes = self._scopes(info, after=True)[:-1]  # not from sentences about something else
        for scope in scopes:
            for mark in scope:
                if mark.blocked is None and self.slots(mark) & {"same-access", "separate-site"}:
                    return "same-access" in self.slots(mark), mark
        return None, None

    def _all(self, slot: str) -> list[Mark]:
        return [m for s in self.sentences for m in s.marks if m.blocked is None and slot in self.slots(m)]

    def _imaging(self, record: ProcedureRecord) -> None:
        spans: dict[str, list[tuple[int, int]]] = {}
        for mark in self._all("imaging"):
            value = self._value(mark, "imaging")
            if value:
                spans.setdefault(value, []).append(self.span(mark))
        record.imaging = list(spans)
        for i, (value, where) in enumerate(spans.items()):
            self.note(f"imaging[{i}]", value, where)

    def _sedation(self, record: ProcedureRecord) -> None:
        others = self._all("other-provider")
        if others:
            record.anesthesia_by_other_provider = True
            self.note("anesthesia_by_other_provider", True, [self.span(m) for m in others])
            return
        given = self._all("sedation")
        if not given:
            return
        minutes: int | None = None
        minute_span: tuple[int, int] | None = None
        timed = {id(m) for m in (*given, *self._all("sedation-time"))}
        for sentence in self.sentences:
            if not any(id(m) in timed for m in sentence.marks):
                continue
            for mark in sentence.marks:
                if "time-unit" in self.slots(mark) and mark.start > sentence.tokens.start:
                    number = self.tokens[mark.start - 1]
                    if number.text.isdigit() and len(number.text) <= 4:
                        minutes = int(number.text)
                        minute_span = (number.start, self.tokens[mark.end - 1].end)
                        break
            if minutes is not None:
                break
        observers = [m for s in self.sentences for m in s.marks if "observer" in self.slots(m)]
        observer = None
        if any(m.blocked is None for m in observers):
            observer = True
        elif any(m.blocked == "negated" for m in observers):
            observer = False
        record.sedation = Sedation(minutes if minutes is None or minutes <= 24 * 60 else None, observer)
        self.note("sedation", self._value(given[0], "sedation"), [self.span(m) for m in given])
        if minute_span is not None and record.sedation.minutes is not None:
            self.note("sedation.minutes", minutes, [minute_span])
        if observer is not None:
            self.note("sedation.independent_observer", observer, [self.span(m) for m in observers])

    def _necessity(self, record: ProcedureRecord) -> None:
        necessity = Necessity()
        care = [m for s in self.sentences for m in s.marks if "conservative-care" in self.slots(m)]
        if any(m.blocked is None for m in care):
            necessity.failed_conservative_care = True
            self.note("necessity.failed_conservative_care", True, [self.span(m) for m in care if m.blocked is None])
        elif any(m.blocked == "negated" for m in care):
            necessity.failed_conservative_care = False
            self.note("necessity.failed_conservative_care", False, [self.span(m) for m in care])
        for mark in self._all("pain-score"):
            score = self._score(mark)
            if score is not None:
                necessity.pain_score, where = score
                self.note("necessity.pain_score", necessity.pain_score, [self.span(mark), where])
                break
        for mark in self._all("fracture-imaging"):
            value = self._value(mark, "fracture-imaging")
            if value:
                necessity.fracture_imaging = value
                self.note("necessity.fracture_imaging", value, [self.span(mark)])
                break
        record.necessity = necessity

    def _score(self, mark: Mark) -> tuple[int, tuple[int, int]] | None:
        """A score 0-10: for a score cue (NRS, VAS) the first number in its window after it; for 'pain', a
        number written N/10 within its window on either side."""
        window = self.r._window(mark)
        out_of_ten = self._value(mark, "pain-score") == "out-of-ten"
        low, high = max(0, mark.start - (window if out_of_ten else 0)), min(len(self.tokens), mark.end + window)
        for i in range(low, high):
            tok = self.tokens[i]
            if not tok.text.isdigit() or len(tok.text) > 2 or int(tok.text) > 10:
                continue
            is_fraction = i + 2 < len(self.tokens) and self.tokens[i + 1].text == "/" and self.tokens[i + 2].text == "10"
            if out_of_ten and not is_fraction:
                continue
            if not out_of_ten and i < mark.end:
                continue
            return int(tok.text), (tok.start, self.tokens[i + 2].end if is_fraction else tok.end)
        return None

    def _date(self, record: ProcedureRecord) -> None:
        for mark in self._all("service-date"):
            a, b = self.span(mark)
            found = DATE.match(self.text, b)
            if not found:
                continue
            raw = found.group(1)
            try:
                if "/" in raw:
                    month, day, year = (int(x) for x in raw.split("/"))
                    record.date_of_service = date(year, month, day)
                else:
                    record.date_of_service = date.fromisoformat(raw)
            except ValueError:
                continue
            self.note("date_of_service", record.date_of_service.isoformat(), [(a, b), found.span(1)])
            return

    def _diagnoses(self, record: ProcedureRecord) -> None:
        spans: dict[str, list[tuple[int, int]]] = {}
        for found in DIAGNOSIS.finditer(self.text):
            if len(spans) >= MAX_DIAGNOSES and found.group(1) not in spans:
                break
            spans.setdefault(found.group(1), []).append(found.span(1))
        record.diagnoses = list(spans)
        for i, (code, where) in enumerate(spans.items()):
            self.note(f"diagnoses[{i}]", code, where)
