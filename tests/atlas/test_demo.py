import io

import numpy as np
import pytest
from django.core.management import call_command
from PIL import Image as PILImage

from atlas.demo.distribution import SKIN_TYPE_WEIGHTS, cell_weights, empty_cells, plan_dataset
from atlas.demo.render import LOOKS, render_case
from atlas.demo.seed import DEMO_SOURCE_SLUG, demo_atlas_seed
from atlas.models import Condition, Image, Region, Source
from atlas.taxonomy import SEED_CONDITIONS


def _pixels(jpeg: bytes) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(jpeg)).convert("RGB"), dtype=np.float32)


def test_the_same_seed_renders_the_same_bytes_and_boxes():
    first = render_case(condition="melanoma", fitzpatrick_type=2, body_site="back", seed=7, views=2)
    second = render_case(condition="melanoma", fitzpatrick_type=2, body_site="back", seed=7, views=2)
    assert [p.jpeg for p in first] == [p.jpeg for p in second]
    assert [p.boxes for p in first] == [p.boxes for p in second]


def test_a_different_seed_renders_different_pixels():
    first = render_case(condition="psoriasis", fitzpatrick_type=3, seed=1)[0]
    second = render_case(condition="psoriasis", fitzpatrick_type=3, seed=2)[0]
    assert np.abs(_pixels(first.jpeg) - _pixels(second.jpeg)).mean() > 5


def test_the_plan_is_deterministic_and_a_bigger_run_extends_a_smaller_one():
    assert plan_dataset(images=200, seed=3) == plan_dataset(images=200, seed=3)
    assert plan_dataset(images=500, seed=3)[:200] == plan_dataset(images=200, seed=3)
    assert plan_dataset(images=200, seed=4) != plan_dataset(images=200, seed=3)


def test_every_taxonomy_condition_has_a_look_and_renders_with_boxes_inside_the_image():
    assert set(LOOKS) == {c.slug for c in SEED_CONDITIONS}
    for number, slug in enumerate(LOOKS):
        for skin_type in (1, 6):
            for photo in render_case(condition=slug, fitzpatrick_type=skin_type, body_site="scalp", seed=number, views=2, size=128):
                assert PILImage.open(io.BytesIO(photo.jpeg)).size == (128, 128)
                assert 1 <= len(photo.boxes) <= 3, slug
                for x, y, w, h in photo.boxes:
                    assert x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= 128 and y + h <= 128, (slug, photo.boxes)


def test_vitiligo_on_dark_skin_is_lighter_inside_its_boxes():
    photo = render_case(condition="vitiligo", fitzpatrick_type=5, seed=11)[0]
    pixels = _pixels(photo.jpeg)
    inside = np.zeros(pixels.shape[:2], bool)
    for x, y, w, h in photo.boxes:
        inside[y : y + h, x : x + w] = True
    # vitiligo on type V: depigmented patches are much lighter than the surrounding skin
    assert pixels[inside].mean() > pixels[~inside].mean() + 10


def _redness_gain(condition: str, skin_type: int, seed: int) -> float:
    """How much redder (R/G) the boxes are than the rest of the photograph."""
    photo = render_case(condition=condition, fitzpatrick_type=skin_type, seed=seed)[0]
    pixels = _pixels(photo.jpeg)
    inside = np.zeros(pixels.shape[:2], bool)
    for x, y, w, h in photo.boxes:
        inside[y : y + h, x : x + w] = True
    ratio = pixels[..., 0] / (pixels[..., 1] + 1)
    return float(ratio[inside].mean() - np.median(ratio[~inside]))


def test_inflammation_is_red_on_light_skin_and_duller_on_dark_skin():
    light = np.mean([_redness_gain("psoriasis", 1, seed) for seed in range(3)])
    dark = np.mean([_redness_gain("psoriasis", 6, seed) for seed in range(3)])
    assert light > 0.2 and dark < light / 2


def test_skin_tone_is_visible_in_the_pixels():
    light = np.mean([_pixels(render_case(condition="eczema", fitzpatrick_type=1, seed=s)[0].jpeg).mean() for s in range(4)])
    dark = np.mean([_pixels(render_case(condition="eczema", fitzpatrick_type=6, seed=s)[0].jpeg).mean() for s in range(4)])
    assert light > dark + 30


def test_the_distribution_is_imbalanced_like_real_collections():
    cells = cell_weights()
    by_type = {t: sum(p for (_, st), p in cells.items() if st == t) for t in SKIN_TYPE_WEIGHTS}
    assert by_type[1] + by_type[2] + by_type[3] > 0.7
    assert by_type[5] < by_type[3] / 2 and by_type[6] < by_type[5]
    assert ("melanoma", 6) in empty_cells() and ("melanoma", 6) not in cells
    malignant = {"melanoma", "basal-cell-carcinoma", "scc-sccis", "actinic-keratosis"}
    assert sum(p for (slug, _), p in cells.items() if slug in malignant) < 0.1
    plan = plan_dataset(images=3000, seed=0)
    assert not any((spec.condition, spec.fitzpatrick_type) in set(empty_cells()) for spec in plan)
    assert sum(spec.fitzpatrick_type == 6 for spec in plan) < sum(spec.fitzpatrick_type == 2 for spec in plan) / 5
    assert {spec.condition for spec in plan} == set(LOOKS)


def test_cases_with_two_photographs_share_labels_but_not_pixels():
    plan = plan_dataset(images=300, seed=0)
    pairs = [spec for spec in plan if spec.views == 2 and spec.view == 0]
    assert pairs, "some cases have two photographs"
    first = render_case(condition=pairs[0].condition, fitzpatrick_type=pairs[0].fitzpatrick_type, seed=pairs[0].render_seed, views=2)
    assert first[0].jpeg != first[1].jpeg


@pytest.mark.django_db
def test_seed_demo_stores_images_with_regions_through_ingestion_and_a_rerun_adds_nothing(media_root):
    out = io.StringIO()
    call_command("seed_demo", "--images", "40", "--seed", "5", stdout=out)
    assert "added 40 images" in out.getvalue()
    source = Source.objects.get(slug=DEMO_SOURCE_SLUG)
    assert source.is_procedural and source.allows_generative_training and source.licence == "CC0-1.0"
    assert "NOT CLINICAL" in source.description
    images = Image.objects.filter(source=source)
    assert images.count() == 40
    assert not images.filter(fitzpatrick_type__isnull=True).exists()
    assert Region.objects.filter(image__source=source).count() >= 40
    assert not images.filter(regions__isnull=True).exists()
    first = images.first()
    assert (first.width, first.height) == (256, 256)
    assert "not clinical" in first.attribution.lower()
    assert len(list(media_root.rglob("*.jpg"))) == 80  # each image and its thumbnail

    again = io.StringIO()
    call_command("seed_demo", "--images", "40", "--seed", "5", stdout=again)
    assert "nothing added" in again.getvalue()
    assert Image.objects.count() == 40


@pytest.mark.django_db
def test_rendering_again_finds_duplicates_by_pixels_not_by_ids():
    # Even when the ids are gone, identical pixels are recognised by ingestion.
    demo_atlas_seed(images=6, seed=9, processes=1)
    Image.objects.update(external_id="")
    summary = demo_atlas_seed(images=6, seed=9, processes=1)
    assert summary.created == 0 and summary.duplicates == 6
    assert Image.objects.count() == 6


@pytest.mark.django_db
def test_the_labels_stored_match_the_plan():
    demo_atlas_seed(images=12, seed=2, processes=1)
    plan = plan_dataset(images=12, seed=2)
    stored = {(i.case_id, i.condition.slug, i.fitzpatrick_type, i.body_site) for i in Image.objects.select_related("condition")}
    assert stored == {(s.case_id, s.condition, s.fitzpatrick_type, s.body_site) for s in plan}
    assert Condition.objects.filter(images__isnull=False).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("args", [["--images", "0"], ["--size", "16"]])
def test_bad_arguments_are_refused_and_store_nothing(args):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("seed_demo", *args, stdout=io.StringIO())
    assert not Image.objects.exists()
    assert not Source.objects.filter(slug=DEMO_SOURCE_SLUG).exists()
