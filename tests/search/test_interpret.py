"""search/interpret.py on its own: plain data in, no database, no Django."""

from __future__ import annotations

import subprocess
import sys

import pytest

from atlas.skin import FITZPATRICK_TONE_WORDS
from atlas.taxonomy import SEED_CONDITIONS
from search.interpret import Vocabulary, interpret

VOCABULARY = Vocabulary.build(((c.slug, c.name, c.synonyms) for c in SEED_CONDITIONS), FITZPATRICK_TONE_WORDS)


def meaning(text: str):
    return interpret(text, VOCABULARY)


def test_importing_it_loads_neither_django_nor_celery():
    code = "import sys, search.interpret; print('django' in sys.modules or 'celery' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize(
    ("text", "conditions"),
    [
        ("melanoma", ("melanoma",)),
        ("ringworm on the arm", ("tinea",)),
        ("tinea versicolor", ("tinea-versicolor",)),  # the longest phrase wins over "tinea"
        ("moles on the back", ("melanocytic-nevus",)),  # a plural is its singular
        ("a mole that changed shape", ("melanoma", "melanocytic-nevus")),
        ("white patches on skin", ("vitiligo", "tinea-versicolor")),
        ("nothing to do with skin: a red car", ()),
        ("other", ()),  # too common a word to mean the condition "other"
    ],
)
def test_names_synonyms_and_lay_phrases_name_conditions(text, conditions):
    assert set(meaning(text).conditions) == set(conditions)
    assert not meaning(text).suggestion


def test_a_phrase_shared_by_conditions_names_each_once():
    vocabulary = Vocabulary.build([("a", "A", ("red patch",)), ("b", "B", ("red patch", "red patches"))], {})
    assert interpret("red patches", vocabulary).conditions == ("b",)
    assert interpret("a red patch", vocabulary).conditions == ("a", "b")


@pytest.mark.parametrize(
    ("text", "meant", "suggestion"),
    [
        ("melanomma", "melanoma", "melanoma"),
        ("Psoraisis on dark skin", "psoriasis", "psoriasis on dark skin"),
        ("eczma", "eczema", "eczema"),
        ("basal cel carcinoma", "basal cell carcinoma", "basal cell carcinoma"),
    ],
)
def test_near_misses_are_corrected_boosted_and_suggested(text, meant, suggestion):
    result = meaning(text)
    assert [c.meant for c in result.corrections] == [meant]
    assert set(VOCABULARY.terms[meant]) <= set(result.conditions)
    assert result.suggestion.lower() == suggestion


@pytest.mark.parametrize("text", ["a red car", "dark skin", "shape", "skin type 5", "parts of the arm", "lighter"])
def test_ordinary_words_are_not_taken_for_typos(text):
    assert meaning(text).corrections == ()


@pytest.mark.parametrize(
    ("text", "types"),
    [
        ("psoriasis on dark skin", (5, 6)),
        ("acne type IV", (4,)),
        ("fitzpatrick 5-6", (5, 6)),
        ("eczema on skin of colour", (4, 5, 6)),
        ("very dark skin", (6,)),
        ("dark marks", ()),  # a condition (post-inflammatory hyperpigmentation), not a tone
    ],
)
def test_skin_types(text, types):
    assert meaning(text).skin_types == types


def test_only_stop_words_and_only_a_skin_type_are_recognised():
    assert meaning("the of and").only_stop_words
    assert not meaning("the rash").only_stop_words
    assert meaning("type V").only_skin_type
    assert meaning("dark skin").only_skin_type
    assert not meaning("acne on dark skin").only_skin_type
    assert not meaning("a red car on dark skin").only_skin_type
