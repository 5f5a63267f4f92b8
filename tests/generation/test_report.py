"""The GAN report: its arithmetic on hand-made inputs, and the whole report (GAN-test, tone in
band, diversity, FD) on a tiny catalogue with a tiny classifier and a tiny generator."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
import torch
from django.core.management import CommandError, call_command

from atlas.models import Condition, Image
from atlas.services.ingestion import Box, image_ingest
from generation import classifier as clf_mod
from generation import quality
from generation import report as rpt
from tests.conftest import make_image_bytes

from .gaps_helpers import tiny_checkpoint, tiny_checkpoint_file
from .helpers import one_torch_thread  # noqa: F401 - fixture

TINY = clf_mod.TrainingPlan(image_size=32, crop_window=64, crops_per_image=1, steps=2, batch_size=4)


# --- arithmetic --------------------------------------------------------------------------------


def test_mean_pairwise_distance():
    points = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    assert rpt.mean_pairwise_distance(points) == pytest.approx((5 + 10 + 5) / 3)
    with pytest.raises(ValueError):
        rpt.mean_pairwise_distance(points[:1])


def test_diversity_ratio_compares_seed_spread_with_real_spread():
    seeds = [np.array([[0.0], [1.0]]), np.array([[0.0], [3.0]])]  # spreads 1 and 3
    real = [np.array([[0.0], [4.0]]), np.array([[0.0], [4.0]])]  # spreads 4 and 4
    assert rpt.diversity_ratio(seeds, real) == {"ratio": 0.5, "maps": 2, "synthetic_mean": 2.0, "real_mean": 4.0}
    collapsed = [np.zeros((8, 5)), np.zeros((8, 5))]
    assert rpt.diversity_ratio(collapsed, real)["ratio"] == 0.0
    # A cell with a single real image cannot say how much real images vary: left out.
    assert rpt.diversity_ratio(seeds, [np.zeros((1, 1)), np.array([[0.0], [6.0]])])["maps"] == 1


def patch(rgb, size=32):
    return np.broadcast_to(np.array(rgb, np.uint8), (size, size, 3)).copy()


def test_tone_in_band_on_patches_of_known_colour():
    light, dark = (246, 220, 200), (80, 55, 42)  # ITA 71.6 (I) and -62.7 (VI) by hand
    images = [patch(light), patch(light), patch(dark), patch((128, 128, 128))]
    result = rpt.tone_in_band(images, [[(8, 8, 8, 8)]] * 4, [1, 2, 1, 6], calibration="chardon-1991")
    assert result["per_type"]["1"]["within_one"] == 0.5  # light asked I: yes; dark asked I: no
    assert result["per_type"]["2"]["within_one"] == 1.0  # I is within one of II
    assert result["per_type"]["6"]["within_one"] == 0.0  # grey: no skin to measure counts as out of band
    assert result["per_type"]["6"]["measured"]["None"] == 1
    assert result["within_one_min"] == 0.0 and result["per_type"]["1"]["exact"] == 0.5


def test_gan_test_scores_real_and_synthetic_separately():
    torch.manual_seed(0)
    clf = clf_mod.ConditionClassifier(clf_mod.classifier_build(2).eval(), ("a", "b"), 32, 64)
    images = torch.zeros(2, 3, 32, 32, dtype=torch.uint8)
    guess = clf.predict_topk(images[:1], k=1)[0][0][0]
    other = "b" if guess == "a" else "a"
    result = rpt.gan_test(clf, real_images=images, real_labels=[guess, guess], real_types=[1, 2],
                          synthetic_images=images, synthetic_labels=[guess, other], synthetic_types=[3, 3])
    assert result["real"]["top1"] == 1.0 and result["synthetic"]["top1"] == 0.5
    assert result["synthetic_over_real_top1"] == 0.5
    assert result["synthetic"]["per_skin_type"]["3"]["n"] == 2


# --- the whole report on a tiny fixture ---------------------------------------------------------


@pytest.fixture
def tiny_world(source, tmp_path, settings, tmp_path_factory, one_torch_thread, monkeypatch):  # noqa: F811
    monkeypatch.setattr(quality, "ENCODER_STEPS", 5)
    settings.GAN_ROOT = tmp_path / "gan"
    settings.GAN_DEVICE = "cpu"
    settings.GAN_HOLDOUT_PERCENT = 40
    settings.ATLAS_SKIN_TONE_CALIBRATION = "chardon-1991"
    for seed in range(16):
        slug = ("melanoma", "psoriasis", "acne", "vitiligo")[seed % 4]
        image_ingest(
            file=make_image_bytes(96, 80, seed=seed, color=(220 - 25 * (seed % 6), 160 - 15 * (seed % 6), 120), fmt="PNG"),
            condition=Condition.objects.get(slug=slug), source=source, fitzpatrick_type=1 + seed % 6,
            fitzpatrick_label_source="dermatologist", regions=[Box(30, 25, 24, 20)], case_id=f"c{seed}",
            enqueue_followups=False,
        )
    quality.condition_classifier_train(plan=TINY)
    return tiny_checkpoint(tmp_path_factory.getbasetemp())


def _report(*args: str) -> dict:
    out = io.StringIO()
    call_command("evaluate_gan", "--report", "--json", "--seeds", "3", *args, stdout=out)
    return json.loads(out.getvalue())


@pytest.mark.slow
@pytest.mark.django_db
def test_report_json_has_every_figure_and_compares_two_checkpoints(tiny_world, tmp_path):
    copy = tmp_path / "copy.pt"
    shutil.copyfile(tiny_checkpoint_file(tmp_path), copy)
    data = _report("--compare", str(copy))
    for key in ("gan_test_real_top1", "gan_test_synthetic_top1", "tone_within_one_min", "diversity_ratio", "fd",
                "fd_real_vs_real", "image_size", "checkpoint"):
        assert key in data and key in data["compare"]
    assert data["image_size"] == 64 and data["checkpoint"].endswith("@2")
    held = [r for r in quality.real_records() if r.split == "eval"]
    assert data["n_layouts"] == len(held) and data["n_generated"] == 6 * len(held)
    assert set(data["tone_within_one"]) == {"1", "2", "3", "4", "5", "6"}  # every layout at every type
    assert 0 <= data["gan_test_synthetic_top1"] <= 1 and 0 <= data["tone_within_one_min"] <= 1
    assert data["fd"] >= 0 and data["fd_real_vs_real"] >= 0
    assert "atlas-crop-encoder" in data["extractor"] and data["classifier"].startswith("mobilenet_v3_small")
    # The same weights, seeds and layouts measured twice in one run give the same figures.
    for key in ("gan_test_synthetic_top1", "tone_within_one", "fd", "fd_real_vs_real", "diversity_ratio"):
        assert data["compare"][key] == data[key]


@pytest.mark.slow
@pytest.mark.django_db
def test_report_never_uses_synthetic_images_as_real(tiny_world, source):
    image_ingest(file=make_image_bytes(96, 80, seed=99, fmt="PNG"), condition=Condition.objects.get(slug="melanoma"),
                 source=source, fitzpatrick_type=3, regions=[Box(30, 25, 24, 20)], origin=Image.Origin.SYNTHETIC,
                 provenance={"model": "test"}, case_id="c99", enqueue_followups=False)
    data = _report()
    held = [r for r in quality.real_records() if r.split == "eval"]
    assert data["n_layouts"] == len(held)  # the synthetic image is neither a layout nor a real reference
    out = io.StringIO()
    call_command("evaluate_gan", "--report", "--seeds", "2", stdout=out)  # the table for people
    text = out.getvalue()
    assert f"held-out layouts: {len(held)}" in text and "GAN-test synthetic top-1" in text
    assert "tone within one, requested type 6" in text and "per condition: real top-1" in text


@pytest.mark.django_db
def test_report_refuses_without_a_classifier(source, tmp_path, settings, tmp_path_factory):
    settings.GAN_ROOT = tmp_path / "gan"
    tiny_checkpoint(tmp_path_factory.getbasetemp())
    with pytest.raises(CommandError, match="train_condition_classifier"):
        _report()


@pytest.mark.django_db
def test_report_refuses_a_missing_checkpoint_file(tmp_path, settings):
    settings.GAN_ROOT = tmp_path / "gan"
    with pytest.raises(CommandError, match="checkpoint file missing"):
        _report("--checkpoint", str(tmp_path / "nope.pt"))
