"""The real-only condition classifier: file round trip, top-k, and that synthetic images never
reach its training (or its held-out set)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from atlas.models import Condition, Image
from atlas.services.ingestion import Box, image_ingest
from generation import classifier as clf_mod
from generation import quality
from tests.conftest import make_image_bytes

TINY = clf_mod.TrainingPlan(image_size=32, crop_window=64, crops_per_image=1, steps=2, batch_size=4)


@pytest.fixture(autouse=True)
def gan_settings(tmp_path, settings):
    settings.GAN_ROOT = tmp_path / "gan"
    settings.GAN_HOLDOUT_PERCENT = 30


def ingest(source, slug: str, seed: int, *, origin=Image.Origin.REAL, case: str = "") -> Image:
    return image_ingest(
        file=make_image_bytes(96, 80, seed=seed, color=(200 - 10 * (seed % 5), 150, 120), fmt="PNG"),
        condition=Condition.objects.get(slug=slug), source=source, fitzpatrick_type=1 + seed % 6,
        fitzpatrick_label_source="dermatologist", regions=[Box(20, 20, 30, 24)], origin=origin,
        provenance={"model": "test"} if origin == Image.Origin.SYNTHETIC else None, case_id=case or f"case-{seed}",
        enqueue_followups=False,
    ).image


@pytest.fixture
def catalogue(source):
    real = [ingest(source, slug, seed) for seed, slug in enumerate(["melanoma", "psoriasis"] * 6)]
    # Vitiligo exists ONLY as synthetic images: if any reached training, its label would.
    synthetic = [ingest(source, "vitiligo", 100 + i, origin=Image.Origin.SYNTHETIC) for i in range(4)]
    return {"real": real, "synthetic": synthetic}


def test_records_hold_real_images_only_and_split_by_case(catalogue):
    records = quality.real_records()
    assert {r.key for r in records} == {str(i.public_id) for i in catalogue["real"]}
    assert {r.split for r in records} == {"train", "eval"}  # 30 % of cases held out
    by_case = {}
    for record, image in zip(records, sorted(catalogue["real"], key=lambda i: i.pk)):
        by_case.setdefault(image.case_id, set()).add(record.split)
    assert all(len(sides) == 1 for sides in by_case.values())


def test_training_never_sees_a_synthetic_image(catalogue, monkeypatch):
    seen: list[str] = []
    real_train = clf_mod.train

    def spy(images, labels, **kwargs):
        seen.extend(labels)
        assert len(images) == len(labels)
        return real_train(images, labels, **kwargs)

    monkeypatch.setattr(clf_mod, "train", spy)
    result = quality.condition_classifier_train(plan=TINY)
    assert seen and "vitiligo" not in seen
    n_train = sum(1 for r in quality.real_records() if r.split == "train")
    assert len(seen) == n_train * TINY.crops_per_image
    assert result.held_out["n"] == len(quality.real_records()) - n_train
    assert set(result.held_out["per_condition"]) <= {"melanoma", "psoriasis"}


def test_the_file_describes_itself_and_round_trips(catalogue, tmp_path):
    result = quality.condition_classifier_train(plan=TINY, out=tmp_path / "clf.pt")
    loaded = clf_mod.load(result.path)
    assert loaded.vocabulary == result.classifier.vocabulary and "melanoma" in loaded.vocabulary
    assert (loaded.image_size, loaded.crop_window) == (32, 64)
    assert loaded.meta["data_fingerprint"] == result.classifier.meta["data_fingerprint"]
    sidecar = json.loads((tmp_path / "clf.json").read_text())
    assert sidecar["real_images_only"] is True and sidecar["data_fingerprint"] == loaded.meta["data_fingerprint"]
    assert sidecar["held_out_top1"] == result.held_out["top1"]
    assert sidecar["vocabulary"] == list(loaded.vocabulary)  # what judge_files reads without torch
    images = torch.randint(0, 256, (5, 3, 48, 48), dtype=torch.uint8)  # another size: resized on the way in
    before = result.classifier.logits(images).softmax(1)
    after = loaded.logits(images).softmax(1)
    assert torch.allclose(before, after, atol=2e-3)  # fp16 weights on disk


def test_same_catalogue_same_fingerprint(catalogue, source):
    plan = clf_mod.TrainingPlan()
    first = quality.data_fingerprint(quality.real_records(), ["a"], quality._fingerprint_params(plan))
    assert first == quality.data_fingerprint(quality.real_records(), ["a"], quality._fingerprint_params(plan))
    ingest(source, "melanoma", 50)
    assert first != quality.data_fingerprint(quality.real_records(), ["a"], quality._fingerprint_params(plan))
    ingest(source, "vitiligo", 51, origin=Image.Origin.SYNTHETIC)  # synthetic images do not count
    records = quality.real_records()
    assert len(records) == len(catalogue["real"]) + 1


def test_predict_topk_orders_and_accepts_pil_and_arrays():
    torch.manual_seed(0)
    clf = clf_mod.ConditionClassifier(clf_mod.classifier_build(4).eval(), ("a", "b", "c", "d"), 32, 64)
    arrays = [np.random.default_rng(i).integers(0, 256, (40, 40, 3), dtype=np.uint8) for i in range(3)]
    top = clf.predict_topk(arrays, k=3)
    assert len(top) == 3 and all(len(row) == 3 for row in top)
    for row in top:
        probs = [p for _, p in row]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1.0 + 1e-6
        assert len({slug for slug, _ in row}) == 3
    from PIL import Image as PILImage

    assert clf.predict_topk([PILImage.fromarray(a) for a in arrays], k=3) == top
    assert clf.predict_topk([], k=3) == []
    with pytest.raises(clf_mod.ClassifierError):
        clf.predict_topk([np.zeros((4, 4), np.uint8)])


def test_accuracy_table_counts_hits():
    clf = clf_mod.ConditionClassifier(clf_mod.classifier_build(2).eval(), ("a", "b"), 32, 64)
    images = torch.zeros(4, 3, 32, 32, dtype=torch.uint8)
    guess = clf.predict_topk(images[:1], k=1)[0][0][0]
    other = "b" if guess == "a" else "a"
    table = clf_mod.accuracy_table(clf, images, [guess, guess, other, other], [1, 1, 2, 2], k=2)
    assert table["top1"] == 0.5 and table["top2"] == 1.0
    assert table["per_condition"][guess] == {"n": 2, "top1": 1.0, "top2": 1.0}
    assert table["per_skin_type"]["2"]["top1"] == 0.0


def test_bad_files_are_refused(tmp_path):
    with pytest.raises(clf_mod.ClassifierError, match="no condition classifier"):
        clf_mod.load(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(clf_mod.ClassifierError, match="not a readable"):
        clf_mod.load(tmp_path / "junk.pt")
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(clf_mod.ClassifierError, match="is not a atlas-condition-classifier/1 file"):
        clf_mod.load(tmp_path / "other.pt")


def test_missing_installed_classifier_says_what_to_run(db):
    with pytest.raises(quality.ClassifierMissing, match="train_condition_classifier"):
        quality.condition_classifier_load()
