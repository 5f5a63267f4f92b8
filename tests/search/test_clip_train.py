import json
import random

import open_clip
import pytest
import torch
from PIL import Image as PILImage

from search.clip_train import CaptionMeta, Sample, TrainConfig, caption_variants, data_fingerprint, is_heldout, preset, train
from tests.search.conftest import MODEL


def test_captions_name_the_condition_and_the_skin_tone_in_several_ways():
    meta = CaptionMeta("Tinea", ("ringworm",), fitzpatrick_type=5, body_site="Arm", origin="synthetic")
    captions = caption_variants(meta, 200, random.Random(0))
    text = " | ".join(captions)
    for phrase in ("Tinea", "ringworm", "Fitzpatrick type V", "dark brown skin", "synthetic image", "on the arm"):
        assert phrase in text
    assert "{" not in text
    assert all("Fitzpatrick" not in c for c in caption_variants(CaptionMeta("Acne"), 50, random.Random(0)))


def test_the_split_and_fingerprint_are_stable():
    keys = [f"{i:064x}" for i in range(1000)]
    held = [k for k in keys if is_heldout(k, 0.2)]
    assert 150 < len(held) < 250 and held == [k for k in keys if is_heldout(k, 0.2)]
    samples = [Sample(key=k, meta=CaptionMeta("Acne"), load=lambda: None) for k in keys[:5]]
    assert data_fingerprint(samples) == data_fingerprint(list(reversed(samples)))
    assert data_fingerprint(samples) != data_fingerprint(samples[:4])


def test_unknown_presets_are_refused():
    assert preset("fast", epochs=3).epochs == 3
    with pytest.raises(ValueError, match="unknown preset"):
        preset("huge")


def test_training_lowers_the_loss_and_writes_a_loadable_checkpoint(tmp_path):
    colours = [(200, 40, 40), (40, 200, 40), (40, 40, 200), (220, 220, 40)]
    names = ["Melanoma", "Eczema", "Tinea", "Acne"]
    samples = [
        Sample(key=f"{i}", meta=CaptionMeta(names[i % 4], fitzpatrick_type=i % 6 + 1), load=lambda c=colours[i % 4]: PILImage.new("RGB", (40, 40), c))
        for i in range(16)
    ]
    config = TrainConfig(model_name=MODEL, epochs=12, batch_size=8, lr=2e-3, warmup_steps=2, holdout_fraction=0.0, threads=1)
    result = train(samples, config=config, out_path=tmp_path / "clip.pt", command="test", progress=False)
    losses = result.metadata["epoch_losses"]
    assert losses[-1] < losses[0]
    meta = json.loads((tmp_path / "clip.json").read_text())
    assert meta["data_fingerprint"] == data_fingerprint(samples) and meta["command"] == "test" and meta["code_version"]
    model, _, _ = open_clip.create_model_and_transforms(MODEL, pretrained=str(tmp_path / "clip.pt"))
    assert torch.isfinite(model.logit_scale).all()
    assert meta["bytes"] < 10_000_000
    assert result.metadata["sha256"] == meta["sha256"]
