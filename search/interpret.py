"""What the words of a query mean: conditions to boost, skin types to boost, "did you mean".

Pure Python (no Django, no model): the query service builds a `Vocabulary` from the Condition
rows (names and synonyms, edited in the admin) and the skin-tone words of atlas/skin.py, and
calls `interpret(text, vocabulary)`. Nothing here filters: the service ranks the conditions and
skin types named here first; only a filter the person chose filters.

- Condition names and synonyms match whole words, longest phrase first ("tinea versicolor"
  before "tinea"). A phrase listed under several conditions names all of them: "white patches"
  is a synonym of vitiligo and of tinea versicolor, so both are boosted.
- A plural matches its singular ("moles" -> mole) silently.
- A near-miss of a name or synonym ("melanomma") is corrected: the condition is boosted and the
  corrected query is offered as "did you mean".
- Skin types: "type V", "Fitzpatrick 5-6", "dark skin", "skin of colour".
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

# Group words people use for a range of types; the per-type words come with the vocabulary.
TONE_GROUPS: dict[str, tuple[int, ...]] = {
    "dark": (5, 6),
    "darker": (5, 6),
    "brown": (4, 5),
    "medium": (3, 4),
    "light": (1, 2),
    "lighter": (1, 2),
    "fair": (1, 2),
    "white": (1, 2),
    "black": (6,),
}

# Words that say nothing about what to look for. A query made only of these is refused.
STOP_WORDS = frozenset(
    """a an and any are as at be by can do does for from has have how i in is it its look looks
    like me my of on or show some that the their there these this those to up was what when where
    which with you your please find search""".split()
)

# A near-miss must be this close (difflib ratio) and this long to be corrected: short words
# ("acen", "mole") sit too close to ordinary words to be guessed safely.
FUZZY_CUTOFF = 0.84
FUZZY_MIN_CHARS = 5

_NUMERAL = r"(vi|iv|v|iii|ii|i|[1-6])"
_TYPE_PATTERN = re.compile(
    rf"\b(?:fitzpatrick(?:\s+skin)?(?:\s+types?)?|skin\s+types?|phototypes?|types?|fst)\s*{_NUMERAL}"
    rf"(?:\s*(?:-|–|to|or|and|/)\s*(?:type\s*)?{_NUMERAL})?\b"
)
_OF_COLOUR = re.compile(r"\bskin\s+of\s+colou?r\b")
_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6}
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?")


@dataclass(frozen=True)
class Vocabulary:
    """Condition names and synonyms, and skin-tone words; everything `interpret` knows."""

    # (slug, (name, synonym, ...)) per condition
    conditions: tuple[tuple[str, tuple[str, ...]], ...]
    # tone word or phrase -> Fitzpatrick types it means ("very dark" -> (6,))
    tone_words: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    @classmethod
    def build(cls, conditions: Iterable[tuple[str, str, Iterable[str]]], tone_words: Mapping[int, Iterable[str]]) -> Vocabulary:
        """From (slug, name, synonyms) rows and {type: (tone words)} (atlas.skin.FITZPATRICK_TONE_WORDS)."""
        words = {word: (t,) for t, phrases in tone_words.items() for word in phrases}
        return cls(
            conditions=tuple((slug, (name, *synonyms)) for slug, name, synonyms in conditions),
            tone_words={**words, **TONE_GROUPS},
        )

    @cached_property
    def terms(self) -> dict[str, tuple[str, ...]]:
        """Lower-case name or synonym -> the slugs it names (several when conditions share it)."""
        terms: dict[str, tuple[str, ...]] = {}
        for slug, names in self.conditions:
            if slug == "other":  # "other" is too common a word to mean the condition
                continue
            for name in names:
                key = " ".join(name.lower().split())
                if key and slug not in terms.get(key, ()):
                    terms[key] = (*terms.get(key, ()), slug)
        return terms

    @cached_property
    def term_pattern(self) -> re.Pattern:
        # One alternation, longest first, so at each position the longest phrase wins; an
        # optional plural "s" ("moles", "warts" are both fine).
        alternatives = "|".join(re.escape(term) for term in sorted(self.terms, key=len, reverse=True))
        return re.compile(r"(?<![\w])(" + alternatives + r")(s|es)?(?![\w])")

    @cached_property
    def tone_pattern(self) -> re.Pattern:
        words = "|".join(re.escape(w) for w in sorted(self.tone_words, key=len, reverse=True))
        return re.compile(r"\b(" + words + r")[\s-]+(?:skin(?:ned)?|complexions?|tones?)\b")


@dataclass(frozen=True)
class Correction:
    typed: str  # the words as typed ("melanomma")
    meant: str  # the name or synonym they were taken for ("melanoma")


@dataclass(frozen=True)
class Interpretation:
    conditions: tuple[str, ...] = ()  # slugs named in the text (exactly or by a corrected near-miss)
    skin_types: tuple[int, ...] = ()  # Fitzpatrick types named in the text
    terms: tuple[str, ...] = ()  # the words that matched, for display
    corrections: tuple[Correction, ...] = ()  # near-misses taken for a name or synonym
    suggestion: str = ""  # the query with the corrections applied ("did you mean"), or ""
    only_stop_words: bool = False  # no word that means anything: "the", "of", "show me", "?!"
    rest: str = ""  # the words left once conditions and skin types are taken out

    @property
    def only_skin_type(self) -> bool:
        """The text names a skin type and nothing else that means anything."""
        return bool(self.skin_types) and not self.conditions and not _content_words(self.rest)


def interpret(text: str, vocabulary: Vocabulary) -> Interpretation:
    """Conditions, skin types and corrections in free text (see the module docstring)."""
    lowered = " " + " ".join(text.lower().split()) + " "
    if not _content_words(lowered):
        return Interpretation(only_stop_words=True, rest=lowered.strip())  # "the of", "?!"
    conditions: list[str] = []
    terms: list[str] = []
    for match in vocabulary.term_pattern.finditer(lowered):
        terms.append(match.group(0))
        _extend(conditions, vocabulary.terms[match.group(1)])
    remaining = vocabulary.term_pattern.sub(" ", lowered)  # "dark marks" (a condition) is not a skin tone
    types, remaining = _skin_types(remaining, vocabulary, terms)
    corrections = _near_misses(remaining, vocabulary)
    for correction in corrections:
        _extend(conditions, vocabulary.terms[correction.meant])
        terms.append(correction.meant)
        remaining = re.sub(rf"(?<![\w]){re.escape(correction.typed)}(?![\w])", " ", remaining)
    return Interpretation(
        conditions=tuple(conditions),
        skin_types=tuple(sorted(types)),
        terms=tuple(terms),
        corrections=tuple(corrections),
        suggestion=_corrected(text, corrections),
        rest=" ".join(remaining.split()),
    )


def _skin_types(text: str, vocabulary: Vocabulary, terms: list[str]) -> tuple[set[int], str]:
    types: set[int] = set()
    for match in _TYPE_PATTERN.finditer(text):
        first = _numeral(match.group(1))
        last = _numeral(match.group(2)) if match.group(2) else first
        types.update(range(min(first, last), max(first, last) + 1))
        terms.append(match.group(0).strip())
    text = _TYPE_PATTERN.sub(" ", text)
    for match in vocabulary.tone_pattern.finditer(text):
        types.update(vocabulary.tone_words[match.group(1)])
        terms.append(match.group(0).strip())
    text = vocabulary.tone_pattern.sub(" ", text)
    if _OF_COLOUR.search(text):
        types.update((4, 5, 6))
        terms.append("skin of colour")
        text = _OF_COLOUR.sub(" ", text)
    return types, text


def _near_misses(text: str, vocabulary: Vocabulary) -> list[Correction]:
    """Runs of 1-3 words that are close to a name or synonym of as many words (longest first)."""
    words = _WORD.findall(text)
    by_length: dict[int, list[str]] = {}
    for term in vocabulary.terms:
        by_length.setdefault(len(term.split()), []).append(term)
    used = [False] * len(words)
    corrections: list[Correction] = []
    for n in (3, 2, 1):
        for start in range(len(words) - n + 1):
            span = words[start : start + n]
            typed = " ".join(span)
            if any(used[start : start + n]) or len(typed) < FUZZY_MIN_CHARS or any(w in STOP_WORDS for w in span):
                continue
            if n == 1 and typed in vocabulary.tone_words:
                continue
            # Typos rarely touch the first letter; requiring it keeps "with skin" from "skin tag".
            candidates = [term for term in by_length.get(n, []) if term[0] == typed[0]]
            close = difflib.get_close_matches(typed, candidates, n=1, cutoff=FUZZY_CUTOFF)
            if close and close[0] != typed:
                corrections.append(Correction(typed=typed, meant=close[0]))
                used[start : start + n] = [True] * n
    return corrections


def _corrected(text: str, corrections: list[Correction]) -> str:
    if not corrections:
        return ""
    corrected = " ".join(text.split())
    for correction in corrections:
        # The typed words may be separated by any spacing and be in any case in the original.
        pattern = r"(?<![\w])" + r"\s+".join(re.escape(w) for w in correction.typed.split()) + r"(?![\w])"
        corrected = re.sub(pattern, correction.meant, corrected, flags=re.IGNORECASE)
    return corrected


def _content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]


def _numeral(token: str) -> int:
    return int(token) if token.isdigit() else _ROMAN[token]


def _extend(items: list[str], new: Iterable[str]) -> None:
    for item in new:
        if item not in items:
            items.append(item)
