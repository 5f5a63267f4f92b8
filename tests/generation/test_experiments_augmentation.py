"""The augmentation study end to end on a tiny catalogue (seconds), and its refusals."""

from __future__ import annotations

import json

import pytest
import torch
from django.core.management import CommandError, call_command

from atlas.models import Condition, Image
from atlas.services.ingestion import Box, image_ingest
from generation.experiments import augmentation as aug
from generation.experiments.augmentation_study import augmentation_experiment_run
from tests.conftest import approved, make_image_bytes

from .gaps_helpers import tiny_checkpoint

TINY = {"image_size": 32, "epochs": 1, "batch_size": 8, "n_boot": 20, "test_fraction": 0.34, "threads": 1,
        "parallel": False}


def _real(source, slug: str, seed: int, case: str, skin: int = 2) -> Image:
    color = (200, 90, 80) if slug == "melanoma" else (120, 160, 200)
    return image_ingest(file=make_image_bytes(48, 48, seed=seed, color=color, fmt="PNG"),
                        condition=Condition.objects.get(slug=slug), source=source, fitzpatrick_type=skin,
                        case_id=case, regions=[Box(8, 8, 20, 20)], enqueue_followups=False).image


def _synthetic(source, slug: str, seed: int, map_source: str | None) -> Image:
    # Synthetic images start pending review; the study trains on approved ones, so the fixture approves.
    return approved(image_ingest(file=make_image_bytes(32, 32, seed=1000 + seed, fmt="PNG"), condition=Condition.objects.get(slug=slug),
                        source=source, origin=Image.Origin.SYNTHETIC, fitzpatrick_type=5,
                        provenance={"checkpoint": "tiny@2", "map": {"source_image": map_source}},
                        enqueue_followups=False).image)


@pytest.fixture
def catalogue(source):
    images = []
    for slug in ("melanoma", "psoriasis"):
        for case in range(3):
            for k in range(2):  # two photographs per case
                images.append(_real(source, slug, seed=len(images) + 1, case=f"{slug}-{case}", skin=1 + k))
    return images


def test_tiny_run_writes_the_report_and_keeps_cases_apart(catalogue, source, tmp_path):
    split_items = [aug.Item(str(i.public_id), i.condition.slug, i.case_id, i.fitzpatrick_type) for i in catalogue]
    _, test_idx = aug.case_split(split_items, test_fraction=TINY["test_fraction"], seed=0)
    test_image = str(catalogue[test_idx[0]].public_id)
    _synthetic(source, "melanoma", 1, map_source=test_image)  # conditioned on a test image: left out
    _synthetic(source, "melanoma", 2, map_source=str(catalogue[0].public_id) if 0 not in test_idx else None)
    _synthetic(source, "psoriasis", 3, map_source=None)

    report = augmentation_experiment_run(out=tmp_path / "out", overrides=TINY)

    files = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"report.md", "results.json", "f1_per_class.png", "confusion.png", "accuracy_by_skin_type.png"} <= files
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    assert result["split"] == {"train_images": 8, "test_images": 4, "train_cases": 4, "test_cases": 2}
    assert result["synthetic"]["used"] == 2
    assert result["arms"]["baseline"]["n_train"] == 8 and result["arms"]["augmented"]["n_train"] == 10
    assert result["arms"]["baseline"]["losses"] and result["steps"] == 1
    assert "1 catalogue synthetic images were left out" in report.read_text()
    assert "| melanoma | 2 |" in report.read_text()


def test_generate_uses_training_split_layouts_only(catalogue, tmp_path):
    tiny_checkpoint(tmp_path)
    augmentation_experiment_run(out=tmp_path / "out", generate=6, overrides=TINY)
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    assert result["synthetic"]["used"] == 6
    assert "training-split layouts only" in result["synthetic"]["how"]


def test_no_synthetic_images_is_a_clear_error(catalogue, tmp_path):
    with pytest.raises(CommandError, match="no synthetic training images"):
        call_command("augmentation_experiment", "--out", str(tmp_path / "out"), "--epochs", "1", "--image-size", "32",
                     "--quiet")
    assert not (tmp_path / "out" / "report.md").exists()


def test_empty_catalogue_and_bad_arguments_are_refused(db, tmp_path):
    with pytest.raises(CommandError, match="no real images"):
        call_command("augmentation_experiment", "--out", str(tmp_path), "--quiet")
    with pytest.raises(CommandError, match="--epochs"):
        call_command("augmentation_experiment", "--epochs", "0")
    with pytest.raises(CommandError, match="not a readable state dict|no weights file"):
        call_command("augmentation_experiment", "--weights", str(tmp_path / "missing.pt"), "--quiet")


def test_local_weights_load_and_foreign_files_are_refused(tmp_path):
    net = aug.classifier_build(5, seed=0)
    path = tmp_path / "w.pt"
    torch.save(net.state_dict(), path)
    again = aug.classifier_build(7, weights=str(path), seed=1)  # head shape differs: replaced, rest loaded
    assert torch.equal(again.features[0][0].weight, net.features[0][0].weight)
    bad = tmp_path / "bad.pt"
    torch.save({"x": torch.zeros(1)}, bad)
    with pytest.raises(aug.ExperimentError, match="does not look like"):
        aug.classifier_build(5, weights=str(bad))


def test_augment_keeps_range_and_shape():
    x = torch.rand(6, 3, 16, 16)
    out = aug.augment(x, torch.Generator().manual_seed(0), jitter=0.5, vertical_flip=True)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert not torch.equal(out, x)


def test_a_short_training_learns_a_separable_task_in_eval_mode():
    # Red vs blue squares: after a few dozen steps the eval-mode predictions must be right.
    # (With torchvision's BatchNorm momentum of 0.01 they collapse onto one class: the
    # running statistics lag behind the weights.)
    gen = torch.Generator().manual_seed(0)
    colours = torch.tensor([[200, 40, 40], [40, 40, 200]], dtype=torch.uint8)
    labels = torch.arange(64) % 2
    images = colours[labels].view(64, 3, 1, 1).expand(64, 3, 32, 32).clone()
    images = (images.int() + torch.randint(-30, 30, images.shape, generator=gen)).clamp(0, 255).to(torch.uint8)
    cfg = aug.preset("fast", image_size=32, batch_size=16, jitter=0.1, threads=1, parallel=False)
    net, log = aug.classifier_train(cfg, aug.ImageSet(images, labels), n_classes=2, steps=40)
    assert log.losses[-1] < log.losses[0]
    assert (aug.classifier_predict(net, images) == labels.numpy()).mean() > 0.9
