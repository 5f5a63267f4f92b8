"""Look-alikes of an image and the drills built from them (search/lookalikes.py), with the tiny
random CLIP of tests/search (embedding pairs) and without any model (listed pairs only)."""

from __future__ import annotations

import random

import pytest

from atlas.models import Condition, Image
from search import indexing, query
from search.lookalikes import DrillError, drill_build, drill_check, lookalikes_for_image, neighbouring_types

pytestmark = pytest.mark.django_db

# Melanoma's listed look-alikes (atlas/condition_content.py, seeded by migration 0011).
LISTED = {"melanocytic-nevus", "sk-isk", "basal-cell-carcinoma", "lentigo", "verruca-vulgaris"}


@pytest.fixture
def no_model(settings, tmp_path):
    settings.SEARCH_CLIP_MODEL = "atlas-clip-tiny"
    settings.SEARCH_CLIP_PRETRAINED = str(tmp_path / "no-such-checkpoint.pt")
    settings.SEARCH_INDEX_DIR = tmp_path / "no-index"
    query.reset_caches()
    yield
    query.reset_caches()


@pytest.fixture
def tones(add_image):
    """Melanoma on V (two) and I; listed look-alikes on V, IV and II; tinea (not listed) on V;
    eczema on III (too far from V); and images no public read may show."""
    made = {
        "melanoma-5": add_image("melanoma", skin_type=5),
        "melanoma-5b": add_image("melanoma", skin_type=5),
        "melanoma-1": add_image("melanoma", skin_type=1),
        "nevus-5": add_image("melanocytic-nevus", skin_type=5),
        "sk-5": add_image("sk-isk", skin_type=5),
        "bcc-4": add_image("basal-cell-carcinoma", skin_type=4),
        "lentigo-2": add_image("lentigo", skin_type=2),
        "tinea-5": add_image("tinea", skin_type=5),
        "tinea-6": add_image("tinea", skin_type=6),
        "eczema-3": add_image("eczema", skin_type=3),
        "hidden-wart-5": add_image("verruca-vulgaris", skin_type=5, is_public=False),
        "pending-wart-5": add_image("verruca-vulgaris", skin_type=5, origin="synthetic", reviewed=False),
    }
    return made


@pytest.fixture
def indexed(search_settings, tones):
    indexing.index_rebuild()
    return tones


def hidden_ids(tones) -> set[int]:
    return {tones["hidden-wart-5"].pk, tones["pending-wart-5"].pk}


def test_neighbouring_types_stay_within_i_to_vi():
    assert neighbouring_types(1) == (1, 2) and neighbouring_types(5) == (4, 5, 6) and neighbouring_types(None) == ()


def test_lookalikes_are_other_conditions_on_neighbouring_types_listed_first(indexed):
    found = lookalikes_for_image(image=indexed["melanoma-5"], k=6)
    assert not found.unavailable and found.skin_types == (4, 5, 6)
    conditions = [item.image.condition.slug for item in found.items]
    assert "melanoma" not in conditions and len(conditions) == len(set(conditions))  # one per condition
    assert all(item.image.fitzpatrick_type in (4, 5, 6) for item in found.items)
    assert not {item.image.pk for item in found.items} & hidden_ids(indexed)
    # every listed look-alike with a public image on IV-VI, before the embedding's own finds
    listed = [item for item in found.items if item.listed]
    assert {item.image.condition.slug for item in listed} == {"melanocytic-nevus", "sk-isk", "basal-cell-carcinoma"}
    assert found.items[: len(listed)] == listed
    assert [item.image.condition.slug for item in found.items if not item.listed] == ["tinea"]
    assert found.items[-1].basis == "similar" and all(item.basis.startswith("listed") for item in listed)


def test_without_a_model_the_listed_lookalikes_still_come_from_the_catalogue(no_model, tones):
    found = lookalikes_for_image(image=tones["melanoma-5"])
    assert found.unavailable
    assert {item.image.condition.slug for item in found.items} == {"melanocytic-nevus", "sk-isk", "basal-cell-carcinoma"}
    assert all(item.basis == "listed" for item in found.items)
    assert not {item.image.pk for item in found.items} & hidden_ids(tones)


def test_a_drill_has_the_answer_and_three_lookalikes_on_the_same_tone(indexed):
    for seed in range(4):
        drill = drill_build(condition=Condition.objects.get(slug="melanoma"), skin_type=5, rng=random.Random(seed))
        assert len(drill.options) == 4 and drill.skin_type == 5
        assert [o.image.condition.slug for o in drill.options if o.correct] == ["melanoma"]
        assert all(o.image.fitzpatrick_type == 5 for o in drill.options)
        distractors = [o for o in drill.options if not o.correct]
        assert len({o.image.condition_id for o in distractors}) == 3
        # the two listed look-alikes on V, then the embedding's nearest other condition on V
        assert {o.image.condition.slug for o in distractors if o.listed} == {"melanocytic-nevus", "sk-isk"}
        assert [o.image.condition.slug for o in distractors if not o.listed] == ["tinea"]
        assert {o.basis for o in distractors if not o.listed} == {"similar"}
        assert not {o.image.pk for o in drill.options} & hidden_ids(indexed)


def test_a_drill_without_a_type_draws_one_where_a_drill_is_possible(indexed):
    drill = drill_build(condition=Condition.objects.get(slug="melanoma"), rng=random.Random(3))
    assert drill.skin_type == 5  # type I has no look-alikes on it


def test_too_few_lookalikes_on_a_tone_is_a_clear_error(no_model, tones):
    with pytest.raises(DrillError) as caught:
        drill_build(condition=Condition.objects.get(slug="melanoma"), skin_type=5, rng=random.Random(0))
    assert caught.value.code == "too_few_lookalikes"
    assert "Only 2 look-alike conditions of Melanoma have public images on type V skin" in caught.value.message
    assert caught.value.skin_types == (1,)


def test_a_condition_with_no_lookalikes_says_so(no_model, add_image):
    other = Condition.objects.get(slug="other")
    assert not other.lookalikes.exists()
    add_image("other", skin_type=4)
    add_image("tinea", skin_type=4)
    with pytest.raises(DrillError) as caught:
        drill_build(condition=other, rng=random.Random(0))
    assert caught.value.code == "no_lookalikes" and "Other has no listed look-alikes" in caught.value.message


def test_with_search_but_no_other_condition_on_the_tone_there_is_nothing_to_drill(search_settings, add_image):
    other = Condition.objects.get(slug="other")
    add_image("other", skin_type=6)
    add_image("tinea", skin_type=2)
    indexing.index_rebuild()
    with pytest.raises(DrillError) as caught:
        drill_build(condition=other, skin_type=6, rng=random.Random(0))
    assert caught.value.code == "no_lookalikes" and "no other condition has public images on type VI skin" in caught.value.message


def test_a_condition_without_images_cannot_be_drilled(no_model):
    with pytest.raises(DrillError) as caught:
        drill_build(condition=Condition.objects.get(slug="vitiligo"), rng=random.Random(0))
    assert caught.value.code == "no_images"


def test_an_answer_is_checked_against_the_images_themselves(indexed):
    melanoma = Condition.objects.get(slug="melanoma")
    drill = drill_build(condition=melanoma, skin_type=5, rng=random.Random(1))
    ids = [o.image.public_id for o in drill.options]
    checked = drill_check(condition=melanoma, option_ids=ids, choice=drill.answer.image.public_id)
    assert [o.correct for o in checked.options] == [o.correct for o in drill.options] and checked.skin_type == 5
    assert drill_check(condition=melanoma, option_ids=ids, choice=drill.answer.image.public_id).answer == checked.answer  # replay: same answer

    wrong = next(o for o in drill.options if not o.correct).image
    with pytest.raises(DrillError, match="not a drill for Melanoma"):  # forged: no melanoma among the options
        drill_check(condition=melanoma, option_ids=[wrong.public_id, indexed["tinea-6"].public_id], choice=wrong.public_id)
    with pytest.raises(DrillError, match="Choose one of"):
        drill_check(condition=melanoma, option_ids=ids, choice=indexed["tinea-6"].public_id)
    with pytest.raises(DrillError, match="no longer public"):
        drill_check(condition=melanoma, option_ids=[*ids[:3], indexed["hidden-wart-5"].public_id], choice=ids[0])
    Image.objects.filter(pk=wrong.pk).update(review_state=Image.ReviewState.PENDING, origin="synthetic")
    with pytest.raises(DrillError, match="no longer public"):
        drill_check(condition=melanoma, option_ids=ids, choice=ids[0])
