"""Resolving what a clinician wrote for a diagnosis to a condition of the vocabulary.

The vocabulary is ``knowledge/data/conditions.yaml``: each condition with its name,
synonyms, abbreviations, ICD-10-CM and ICD-11 codes, and a list of ambiguous words. The
rules (documented for clinicians in docs/patient-file.md, "How diagnoses are matched"):

1. **Normalised comparison.** Case, accents, punctuation, hyphens and spacing do not matter;
   ``type I``/``type 1``/``1`` are the same; British and American spellings match
   (ischaemic/ischemic, tumour/tumor, phaeochromocytoma/pheochromocytoma, oedema/edema); a
   plural matches its singular. The whole text must be a name, synonym, abbreviation or id.
2. **Codes.** An ICD-10-CM or ICD-11 code resolves to the entry listing the longest prefix of
   it (``G56.41`` is CRPS II, not the broader mononeuropathy ``G56``). A code that several
   entries share at that length is ambiguous; a well-formed code outside the vocabulary is
   ``unknown-code``.
3. **Negation and uncertainty are never resolved.** Text with a question mark, or with a word
   that negates (``no``, ``denies``, ``-ve``, ``excluded``), doubts (``possible``,
   ``suspected``, ``query``, ``rule out``, ``r/o``), speaks of someone else (``family
   history``, ``mother``) or says the condition has ended (``resolved``, ``in remission``)
   does not count as the condition, nor as its absence: it is reported, naming the condition
   it mentions, for a physician to read.
4. **Qualifiers, conservatively.** Besides the exact wording, a name may be preceded by
   history words (``history of``, ``h/o``, ``known``, ``previous``, ``pre-existing``,
   ``chronic``, ``active``, ``mild``) or laterality, and followed by a site, laterality or date
   (``(left arm)``, ``right foot``, ``since 2019``), from closed lists. Anything else around a
   name leaves the text unrecognised (it mentions the condition, which the report names).
5. **Ambiguous words are not guessed** (``angina``, ``PE``, ``alcohol``): they are reported with
   their meanings.

Text that none of this resolves is ``unrecognised``: shown as "not recognised: check by hand".
"""

from __future__ import annotations

import re
import unicodedata
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from ketapath.knowledge.base import KnowledgeError
from ketapath.knowledge.clinical import AmbiguousTerm, Condition, Knowledge

ICD10CM_PATTERN = re.compile(r"^[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$")
# ICD-11 MMS stem codes: the second character is a letter (never I or O), the third a digit;
# ICD-10-CM codes have a digit second, so the two shapes never overlap.
ICD11_PATTERN = re.compile(
    r"^[0-9A-HJ-NP-Z][A-HJ-NP-Z][0-9][0-9A-HJ-NP-Z](\.?[0-9A-HJ-NP-Z]{1,2})?$"
)

MatchedBy = Literal[
    "id",
    "name",
    "abbreviation",
    "icd10cm",
    "icd11",
    "unknown-code",
    "ambiguous",
    "negated",
    "uncertain",
    "other-person",
    "ended",
    "unrecognised",
]
# The ways a text can be qualified so that it must not count as the condition (rule 3).
QUALIFIED: frozenset[str] = frozenset({"negated", "uncertain", "other-person", "ended"})


@dataclass(frozen=True)
class Resolution:
    """What one written item resolved to, and why.

    ``condition`` is set only when the text is taken as that condition. Otherwise
    ``candidates`` lists the meanings of an ambiguous word or code, and ``mentions`` the
    conditions an unresolved text names (for the report; never counted).
    """

    given: str
    condition: Condition | None
    matched_by: MatchedBy
    matched_code: str = ""
    term: str = ""
    qualifier: str = ""
    cue: str = ""
    candidates: tuple[str, ...] = ()
    mentions: tuple[Condition, ...] = field(default=())

    @property
    def resolved(self) -> bool:
        return self.condition is not None


# ------------------------------------------------------------------ normalisation

_NUMBER_WORDS = {"i": "1", "ii": "2", "iii": "3", "iv": "4", "one": "1", "two": "2"}
_DROPPED = {"type"}


def _spelling(word: str) -> str:
    """One spelling for British and American forms and for plurals (rule 1)."""
    if word in _NUMBER_WORDS:
        return _NUMBER_WORDS[word]
    if len(word) >= 5 and word.endswith("ies"):  # injuries, neuropathies
        word = word[:-3] + "y"
    elif len(word) >= 5 and word.endswith("s") and not word.endswith(("ss", "is", "us")):
        word = word[:-1]  # lesions, migraines (never psychosis, abscess, status)
    if len(word) >= 6:  # ischaemic, phaeochromocytoma, oedema, apnoea, oesophageal
        word = word.replace("ae", "e").replace("oe", "e")
    if len(word) >= 5 and word.endswith("our"):  # tumour, behaviour
        word = word[:-3] + "or"
    return word


def words(text: str) -> tuple[str, ...]:
    """The normalised words of a text: what the vocabulary compares."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    plain = re.sub(r"['\u2019]", "", plain)  # Sudeck's -> sudecks
    raw = re.findall(r"[a-z]+|[0-9]+", plain)
    return tuple(_spelling(w) for w in raw if w not in _DROPPED)


def key(text: str) -> str:
    """The comparison key of a text: its normalised words without spaces."""
    return "".join(words(text))


def normalise_code(code: str) -> str:
    return code.strip().upper().replace(".", "")


def is_icd10cm(text: str) -> bool:
    return bool(ICD10CM_PATTERN.match(text.strip().upper()))


def is_icd11(text: str) -> bool:
    return bool(ICD11_PATTERN.match(text.strip().upper()))


# ------------------------------------------------------------------ cue words (rule 3)


def _normalised(text: str) -> frozenset[str]:
    """The normalised words of a space-separated list."""
    return frozenset(w for item in text.split() for w in words(item))


_CUES: dict[MatchedBy, frozenset[str]] = {
    "negated": _normalised(
        "no not non nil none without denies denied deny negative neg absent absence "
        "excluded never free"
    ),
    "uncertain": _normalised(
        "possible possibly probable probably suspected suspect suspicion query queried "
        "likely unlikely maybe presumed presumptive provisional unconfirmed uncertain "
        "differential ddx rule exclude versus vs borderline risk awaiting pending "
        "screening"
    ),
    "other-person": _normalised(
        "family fh fhx mother father mum mom dad sister brother sibling parent son daughter "
        "aunt uncle grandmother grandfather cousin relative maternal paternal"
    ),
    "ended": _normalised("resolved remission remitted recovered cured healed former formerly ex"),
}
# Written forms that lose their meaning once punctuation is removed.
_RAW_CUES: tuple[tuple[MatchedBy, re.Pattern[str]], ...] = (
    ("uncertain", re.compile(r"\?")),
    ("uncertain", re.compile(r"\br\s*/\s*o\b", re.IGNORECASE)),
    ("negated", re.compile(r"(?<![a-z0-9])-\s*ve\b", re.IGNORECASE)),
    ("negated", re.compile(r"\bw\s*/\s*o\b", re.IGNORECASE)),
)

# ------------------------------------------------------------------ qualifiers (rule 4)

_LATERALITY = "left right bilateral unilateral both l r lt rt sided side"
_LEADING = _normalised(
    "a an the history of h o hx pmh pmhx past medical known previous previously prior pre "
    "existing preexisting background longstanding long standing established diagnosed dx "
    "with chronic active current currently ongoing mild moderate " + _LATERALITY
)
_SITES = (
    "arm arms leg legs hand hands foot feet wrist wrists ankle ankles knee knees hip hips "
    "shoulder shoulders elbow elbows finger fingers toe toes thumb forearm thigh calf shin "
    "upper lower limb limbs extremity extremities ue le ul ll face facial eye eyes region area"
)
_TIME = (
    "since from onset diagnosed dx in on at of the year years yr yrs month months week weeks "
    "day days ago jan feb mar apr may jun jul aug sep sept oct nov dec january february march "
    "april june july august september october november december"
)
_TRAILING = _normalised(f"{_LATERALITY} {_SITES} {_TIME}")


_DATE_WORDS = _normalised(_TIME) - _normalised("in on at of the")


def _is_leading(tokens: tuple[str, ...]) -> bool:
    return all(t in _LEADING for t in tokens)


def _is_trailing(tokens: tuple[str, ...]) -> bool:
    """Site, laterality or a date; a number only as a year or after a date word."""
    for i, t in enumerate(tokens):
        if t.isdigit():
            year = len(t) == 4 and t[:2] in ("19", "20")
            if not (year or (i > 0 and tokens[i - 1] in _DATE_WORDS)):
                return False
        elif t not in _TRAILING:
            return False
    return True


# ------------------------------------------------------------------ the index


@dataclass(frozen=True)
class _Entry:
    """What one comparison key means: a condition, or an ambiguous word's meanings."""

    condition: Condition | None
    ambiguous: AmbiguousTerm | None
    term: str
    abbreviation: bool


@dataclass(frozen=True)
class Index:
    """The vocabulary arranged for matching: keys of every term, and codes."""

    terms: dict[str, _Entry]
    longest: int
    icd10cm: dict[str, list[tuple[Condition, str]]]
    icd11: dict[str, list[tuple[Condition, str]]]


_INDEXES: weakref.WeakKeyDictionary[Knowledge, Index] = weakref.WeakKeyDictionary()


def index(kb: Knowledge) -> Index:
    """The index of ``kb``'s vocabulary (built once per knowledge base).

    Raises ``KnowledgeError`` when two conditions, or a condition and an ambiguous word, share
    a term after normalisation: the vocabulary must never guess between them.
    """
    built = _INDEXES.get(kb)
    if built is None:
        built = _build(kb)
        _INDEXES[kb] = built
    return built


def _build(kb: Knowledge) -> Index:
    terms: dict[str, _Entry] = {}
    clashes: list[str] = []

    def add(text: str, entry: _Entry) -> None:
        k = key(text)
        if not k:
            clashes.append(f"{text!r} has no words")
            return
        old = terms.get(k)
        if old is None:
            terms[k] = entry
        elif (old.condition, id(old.ambiguous)) != (entry.condition, id(entry.ambiguous)):
            clashes.append(f"{text!r} is also {old.term!r}")

    for cond in kb.conditions.entries:
        for text in (cond.name, *cond.synonyms):
            add(text, _Entry(cond, None, text, abbreviation=False))
        for text in cond.abbreviations:
            add(text, _Entry(cond, None, text, abbreviation=True))
        if key(cond.id) not in terms:  # an id that is also a name is reported as the name
            add(cond.id, _Entry(cond, None, cond.id, abbreviation=False))
    for amb in kb.conditions.ambiguous:
        for text in amb.terms:
            add(text, _Entry(None, amb, text, abbreviation=False))
    if clashes:
        raise KnowledgeError("conditions.yaml: terms that mean two things: " + "; ".join(clashes))
    icd10: dict[str, list[tuple[Condition, str]]] = {}
    icd11: dict[str, list[tuple[Condition, str]]] = {}
    for cond in kb.conditions.entries:
        for code in cond.icd10cm:
            icd10.setdefault(normalise_code(code), []).append((cond, code))
        for code in (*cond.icd11, *cond.icd11_earlier):
            icd11.setdefault(normalise_code(code), []).append((cond, code))
    # A term's words may be written split further ("post herpetic"), hence the margin.
    longest = max(len(words(e.term)) for e in terms.values()) + 3
    return Index(terms, longest, icd10, icd11)


# ------------------------------------------------------------------ resolving


def resolve(text: str, kb: Knowledge) -> Resolution:
    """Resolve one written diagnosis (rules 1-5 of this module)."""
    given = text.strip()
    idx = index(kb)
    raw_cue = next((kind for kind, pattern in _RAW_CUES if pattern.search(given)), None)
    exact = idx.terms.get(key(given))
    if exact is not None and raw_cue is None:
        return _from_entry(given, exact, kb)
    code = _by_code(given, idx)
    if code is not None:  # a code's shape leaves no room for a cue ("?", "-ve", "r/o")
        return code
    tokens = words(given)
    spans = _spans(tokens, idx)
    outside = _outside(tokens, spans)
    cue = raw_cue or next((kind for kind, cues in _CUES.items() if cues & set(outside)), None)
    mentions = _mentioned(spans)
    if raw_cue is not None and not mentions:  # "G90.5?": say which condition the code is
        bare = _by_code(re.sub(r"\?", "", given).strip(), idx)
        mentions = (bare.condition,) if bare is not None and bare.condition else ()
    if cue is not None:
        if not mentions:
            return Resolution(given, None, "unrecognised", cue=cue)
        return Resolution(given, None, cue, cue=cue, mentions=mentions)
    for start, end, entry in spans:
        if _is_leading(tokens[:start]) and _restates_or_qualifies(tokens[end:], entry, idx):
            parts = (" ".join(tokens[:start]), " ".join(tokens[end:]))
            qualifier = " and ".join(f"'{p}'" for p in parts if p)
            found = _from_entry(given, entry, kb)
            return Resolution(
                given,
                found.condition,
                found.matched_by,
                term=found.term,
                qualifier=qualifier,
                candidates=found.candidates,
                mentions=found.mentions,
            )
    return Resolution(given, None, "unrecognised", mentions=mentions)


def _restates_or_qualifies(rest: tuple[str, ...], entry: _Entry, idx: Index) -> bool:
    """What follows a name: qualifiers, or the same condition's other name first
    ("complex regional pain syndrome (CRPS)")."""
    if _is_trailing(rest):
        return True
    for cut in range(len(rest), 0, -1):
        again = idx.terms.get("".join(rest[:cut]))
        if again is None:
            continue
        if again == entry or (entry.condition is not None and again.condition == entry.condition):
            return _is_trailing(rest[cut:])
    return False


def _from_entry(given: str, entry: _Entry, kb: Knowledge) -> Resolution:
    if entry.ambiguous is not None:
        meanings = tuple(m.meaning for m in entry.ambiguous.meanings)
        named = tuple(kb.condition(m.condition) for m in entry.ambiguous.meanings if m.condition)
        return Resolution(
            given, None, "ambiguous", term=entry.term, candidates=meanings, mentions=named
        )
    assert entry.condition is not None
    cond = entry.condition
    if given.strip() == cond.id:
        matched: MatchedBy = "id"
    else:
        matched = "abbreviation" if entry.abbreviation else "name"
    return Resolution(given, cond, matched, term=entry.term)


def _by_code(given: str, idx: Index) -> Resolution | None:
    """Rule 2: a code by its longest listed prefix; ``None`` when the text is not a code."""
    if is_icd10cm(given):
        system: MatchedBy = "icd10cm"
        table = idx.icd10cm
    elif is_icd11(given):
        system = "icd11"
        table = idx.icd11
    else:
        return None
    code = normalise_code(given)
    for length in range(len(code), 0, -1):
        found = table.get(code[:length])
        if not found:
            continue
        conditions = tuple({c.id: c for c, _ in found}.values())
        if len(conditions) == 1:
            return Resolution(given, conditions[0], system, matched_code=found[0][1])
        return Resolution(
            given,
            None,
            "ambiguous",
            matched_code=found[0][1],
            candidates=tuple(c.name for c in conditions),
            mentions=conditions,
        )
    return Resolution(given, None, "unknown-code")


def _spans(tokens: tuple[str, ...], idx: Index) -> list[tuple[int, int, _Entry]]:
    """Every (start, end, entry) where words start..end are a term; longest first."""
    out: list[tuple[int, int, _Entry]] = []
    for start in range(len(tokens)):
        for end in range(min(len(tokens), start + idx.longest), start, -1):
            entry = idx.terms.get("".join(tokens[start:end]))
            if entry is not None:
                out.append((start, end, entry))
    out.sort(key=lambda s: (s[0] - s[1], s[0]))
    return out


def _outside(tokens: tuple[str, ...], spans: list[tuple[int, int, _Entry]]) -> tuple[str, ...]:
    """The words outside the longest terms found (where a cue word counts)."""
    covered = [False] * len(tokens)
    for start, end, _ in spans:
        if not any(covered[start:end]):
            covered[start:end] = [True] * (end - start)
    return tuple(t for t, c in zip(tokens, covered, strict=True) if not c)


def _mentioned(spans: list[tuple[int, int, _Entry]]) -> tuple[Condition, ...]:
    found: dict[str, Condition] = {}
    for _, _, entry in spans:
        if entry.condition is not None:
            found.setdefault(entry.condition.id, entry.condition)
    return tuple(found.values())


# ------------------------------------------------------------------ explaining


_CUE_WORDS: dict[str, str] = {
    "negated": "says it is absent or negative",
    "uncertain": "is uncertain (a question mark, 'possible', 'suspected', 'rule out')",
    "other-person": "is about someone else (family history)",
    "ended": "says it has ended (resolved, in remission)",
}


def _role(cond: Condition, kb: Knowledge) -> str:
    for ci in kb.contraindications.entries:
        if cond.id in ci.conditions:
            severity = {"soft": "a relative contraindication", "hard": "a contraindication"}
            return severity.get(ci.severity, "a precaution")
    if cond.kind == "indication":
        return "an indication"
    return "a comorbidity"


def screening_role(cond: Condition, kb: Knowledge) -> str:
    """What screening does with the condition, in words: its evidence grade or its rule."""
    for ev in kb.indications.entries:
        if cond.id in ev.conditions:
            return f"indication, Grade {ev.grade} ({ev.certainty} certainty)"
    rules = [ci for ci in kb.contraindications.entries if cond.id in ci.conditions]
    if rules:
        kind = {"hard": "contraindication", "soft": "relative contraindication"}
        return "; ".join(
            f"{kind.get(ci.severity, 'precaution')} ({ci.severity}): {ci.name}" for ci in rules
        )
    return "recorded; no screening rule"


def describe(cond: Condition, kb: Knowledge) -> dict[str, object]:
    """A condition as the vocabulary page, the JSON list and the record pages show it."""
    return {
        "id": cond.id,
        "name": cond.name,
        "kind": cond.kind,
        "screening": screening_role(cond, kb),
        "icd10cm": list(cond.icd10cm),
        "icd11": list(cond.icd11),
        "icd11_earlier": list(cond.icd11_earlier),
        "icd11_broader": list(cond.icd11_broader),
        "snomed_ct": list(cond.snomed_ct),
        "synonyms": list(cond.synonyms),
        "abbreviations": list(cond.abbreviations),
        "codes_note": cond.codes_note,
    }


def _named(conditions: Iterable[Condition], kb: Knowledge) -> str:
    return "; ".join(f"{c.name} ({_role(c, kb)})" for c in conditions)


def explain(resolution: Resolution, kb: Knowledge) -> str:
    """Plain words on how a text was read, for the finding, the page and the form."""
    r = resolution
    if r.condition is not None:
        how = {
            "id": "by its vocabulary id",
            "name": "by name",
            "abbreviation": "by abbreviation",
            "icd10cm": f"by ICD-10-CM code ({r.matched_code})",
            "icd11": f"by ICD-11 code ({r.matched_code})",
        }.get(r.matched_by, "")
        extra = f"; {r.qualifier} read as a qualifier" if r.qualifier else ""
        return f"{r.given!r} read as {r.condition.name} {how}{extra}."
    if r.matched_by == "ambiguous":
        meanings = "; ".join(r.candidates)
        what = f"code {r.matched_code}" if r.matched_code else "this word"
        return (
            f"{r.given!r} is ambiguous ({what} can mean: {meanings}): not recognised, check by "
            "hand and write the diagnosis out in full."
        )
    if r.matched_by in QUALIFIED:
        named = _named(r.mentions, kb)
        return (
            f"{r.given!r} names {named} but {_CUE_WORDS[r.matched_by]}: ketapath counts it "
            "neither as the condition nor as its absence. Not recognised: check by hand."
        )
    if r.matched_by == "unknown-code":
        system = "ICD-11" if is_icd11(r.given) else "ICD-10-CM"
        return (
            f"{system} code {r.given!r} is not in ketapath's diagnosis vocabulary: not "
            "recognised, check it by hand. No screening rule could be applied to it; every "
            "listed contraindication is in the vocabulary."
        )
    mentioned = (
        f" It mentions {_named(r.mentions, kb)}, with other words that ketapath does not read."
        if r.mentions
        else ""
    )
    written = f" It {_CUE_WORDS[r.cue]}." if r.cue in _CUE_WORDS else ""
    return (
        f"{r.given!r} is not recognised (not a diagnosis name, abbreviation or code that "
        f"ketapath knows): check it by hand.{mentioned}{written} Screening could not check "
        "it, so a physician must review it."
    )


def resolution_dict(resolution: Resolution, kb: Knowledge) -> dict[str, object]:
    """How a written diagnosis was read, for JSON answers and the record pages."""
    r = resolution
    return {
        "given": r.given,
        "resolved": r.resolved,
        "matched_by": r.matched_by,
        "condition": describe(r.condition, kb) if r.condition is not None else None,
        "matched_code": r.matched_code,
        "qualifier": r.qualifier,
        "candidates": list(r.candidates),
        "mentions": [c.id for c in r.mentions],
        "explanation": explain(r, kb),
    }
