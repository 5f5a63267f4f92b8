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


# --- the condition-aware recipe: losses, draws, augmentation, fine-tuning -------------------

import subprocess  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402

from search.clip_augment import NO_AUGMENT, AugmentConfig, augment, jpeg_roundtrip  # noqa: E402
from search.clip_train import clip_loss, draw_weights, supcon_loss  # noqa: E402


def test_the_training_code_loads_neither_django_nor_celery():
    code = "import sys, search.clip_train, search.clip_augment; print('django' in sys.modules or 'celery' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def _unit(rows):
    return torch.nn.functional.normalize(torch.tensor(rows, dtype=torch.float32), dim=1)


def test_clip_loss_without_groups_is_open_clips_clip_loss():
    torch.manual_seed(0)
    images, texts = _unit(torch.randn(6, 8).tolist()), _unit(torch.randn(6, 8).tolist())
    scale = torch.tensor(10.0)
    assert torch.allclose(clip_loss(images, texts, scale), open_clip.ClipLoss()(images, texts, scale))
    distinct = torch.arange(6)
    assert torch.allclose(clip_loss(images, texts, scale, distinct), clip_loss(images, texts, scale))


def test_clip_loss_with_groups_lets_images_of_one_group_share_their_captions():
    # Images 0 and 1 are melanoma on type V skin, image 2 something else. ClipLoss prefers the
    # two melanoma pairs pushed apart (each caption fits only its own image); with groups the
    # loss prefers them together, since both captions describe both images.
    together = _unit([[1, 0, 0], [1, 0, 0], [0, 0, 1]])
    apart = _unit([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    scale, groups = torch.tensor(20.0), torch.tensor([7, 7, 3])
    assert clip_loss(together, together, scale, groups) < clip_loss(apart, apart, scale, groups)
    assert clip_loss(apart, apart, scale) < clip_loss(together, together, scale)


def test_supcon_pulls_same_condition_together_and_skips_lone_anchors():
    labels = torch.tensor([0, 0, 1, 1])
    clustered = _unit([[1, 0], [1, 0.1], [0, 1], [0.1, 1]])
    mixed = _unit([[1, 0], [0, 1], [1, 0.1], [0.1, 1]])
    assert supcon_loss(clustered, labels, 0.1) < supcon_loss(mixed, labels, 0.1)
    assert supcon_loss(clustered, torch.tensor([0, 1, 2, 3]), 0.1) == 0


def test_draws_favour_rare_conditions_and_skin_types():
    def sample(name, skin_type):
        return Sample(key=name, meta=CaptionMeta(name, fitzpatrick_type=skin_type), load=lambda: None)

    samples = [sample("Acne", 2) for _ in range(9)] + [sample("Melanoma", 6)]
    weights = draw_weights(samples, 0.5)
    assert weights.sum() == pytest.approx(1.0)
    assert weights[-1] == pytest.approx(9 * weights[0])  # (9 x 9)^-0.5 against (1 x 1)^-0.5
    assert np.allclose(draw_weights(samples, 0.0), 0.1)


def _skin_patch(size=48, colour=(196, 140, 110)):
    """A skin-coloured square with a darker lesion off centre, as uint8 (1, 3, H, W)."""
    image = torch.tensor(colour, dtype=torch.uint8).view(3, 1, 1).repeat(1, size, size)
    image[:, 8:20, 26:40] = torch.tensor([120, 70, 60], dtype=torch.uint8).view(3, 1, 1)
    return image.unsqueeze(0)


def _chromaticity(images):
    return images / images.sum(dim=1, keepdim=True).clamp(min=1e-6)


def test_augmentation_keeps_the_skin_tone():
    # Every operation on, strongly: the colour of plain skin (R:G:B) must not move, whatever
    # the crop, turn, blur, recompression and lighting; only its brightness may, a little.
    plain = _skin_patch().repeat(16, 1, 1, 1)
    plain[:, :, :, :] = torch.tensor([196, 140, 110], dtype=torch.uint8).view(1, 3, 1, 1)
    config = AugmentConfig(blur=1.0, jpeg=1.0, light=0.1)
    out = augment(plain, 32, torch.Generator().manual_seed(0), config)
    before = _chromaticity(plain.float() / 255)[0, :, 0, 0]
    after = _chromaticity(out).mean(dim=(2, 3))
    assert (after - before).abs().max() < 0.01
    brightness = out.mean(dim=(1, 2, 3)) / (plain.float().mean() / 255)
    assert ((brightness > 0.85) & (brightness < 1.15)).all()


def test_augmentation_is_seeded_and_varies_geometry():
    batch = _skin_patch().repeat(8, 1, 1, 1)
    one = augment(batch, 32, torch.Generator().manual_seed(3), AugmentConfig())
    two = augment(batch, 32, torch.Generator().manual_seed(3), AugmentConfig())
    assert one.shape == (8, 3, 32, 32) and one.dtype == torch.float32
    assert torch.equal(one, two)
    assert 0.0 <= float(one.min()) and float(one.max()) <= 1.0
    assert not torch.allclose(one[0], one[1])  # the lesion lands elsewhere in different draws


def test_quarter_turns_are_exact_rotations_of_the_image():
    image = _skin_patch(size=32)
    plain = augment(image, 32, torch.Generator().manual_seed(0), NO_AUGMENT)[0]
    assert torch.allclose(plain, image[0].float() / 255, atol=0.2)  # identity up to resampling
    turned = augment(image.repeat(12, 1, 1, 1), 32, torch.Generator().manual_seed(1), AugmentConfig(
        crop_area=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip=0.0, tilt_degrees=0.0, blur=0.0, jpeg=0.0, light=0.0
    ))
    seen = set()
    for out in turned:
        errors = [float((out - torch.rot90(plain, k, dims=(1, 2))).abs().max()) for k in range(4)]
        assert min(errors) < 1e-4
        seen.add(int(np.argmin(errors)))
    assert len(seen) > 1


def test_jpeg_roundtrip_at_low_quality_changes_pixels_but_not_shape():
    image = _skin_patch(size=32)[0].float() / 255
    image[:, ::2, ::2] = 0.3  # fine texture that JPEG at q20 cannot keep
    out = jpeg_roundtrip(image, 20)
    assert out.shape == image.shape and 0 < float((out - image).abs().mean()) < 0.3


def _toy_samples(count=16):
    colours = [(200, 40, 40), (40, 200, 40), (40, 40, 200), (220, 220, 40)]
    names = ["Melanoma", "Eczema", "Tinea", "Acne"]
    return [
        Sample(key=f"{i}", meta=CaptionMeta(names[i % 4], fitzpatrick_type=i % 6 + 1), load=lambda c=colours[i % 4]: PILImage.new("RGB", (40, 40), c))
        for i in range(count)
    ]


def test_the_convolutional_model_trains_and_loads_through_the_encoder(tmp_path):
    from search.encoder import load_encoder

    config = TrainConfig(model_name="atlas-clip-rn", epochs=2, batch_size=8, warmup_steps=1, holdout_fraction=0.0, threads=1)
    result = train(_toy_samples(), config=config, out_path=tmp_path / "rn.pt", progress=False)
    meta = result.metadata
    assert set(meta["epoch_loss_terms"]) == {"clip", "supcon", "condition"}
    assert all(v > 0 for v in meta["epoch_loss_terms"]["supcon"])
    assert meta["conditions"] == ["Acne", "Eczema", "Melanoma", "Tinea"] and meta["init"] is None
    encoder = load_encoder("atlas-clip-rn", str(tmp_path / "rn.pt"), "cpu")
    vectors = encoder.embed_images([PILImage.new("RGB", (300, 200), (90, 60, 40))])
    assert vectors.shape == (1, 128) and np.isclose(np.linalg.norm(vectors), 1.0)
    assert encoder.preprocess.transforms[1].size == (128, 128)


def test_a_cpu_budget_stops_training_early_and_still_saves(tmp_path):
    config = TrainConfig(model_name=MODEL, epochs=50, batch_size=8, warmup_steps=1, holdout_fraction=0.0, threads=1, cpu_budget_seconds=1e-9)
    result = train(_toy_samples(), config=config, out_path=tmp_path / "clip.pt", progress=False)
    assert len(result.metadata["epoch_losses"]) == 1 and "at step 1 of 100 (epoch 1 of 50)" in result.metadata["stopped_early"]
    assert (tmp_path / "clip.pt").exists()


def test_the_learning_rate_warms_up_then_decays_with_the_budget():
    from search.clip_train import _lr_factor

    assert _lr_factor(0, 10, 0.0) == pytest.approx(0.1) and _lr_factor(9, 10, 0.0) == pytest.approx(1.0)
    assert _lr_factor(50, 10, 0.5) == pytest.approx(0.5) and _lr_factor(50, 10, 1.0) == pytest.approx(0.0)
    assert _lr_factor(50, 10, 0.9) < _lr_factor(50, 10, 0.2)


def _state(path):
    return torch.load(path, map_location="cpu")


def test_init_starts_from_a_local_checkpoint_of_another_architecture(tmp_path):
    # The test writes its own "general" checkpoint: the ViT config (not the default ResNet),
    # with weights no random init would give.
    from search.clip_train import save_checkpoint
    from search.encoder import register_model_configs

    register_model_configs()
    torch.manual_seed(123)
    general = open_clip.create_model(MODEL)
    with torch.no_grad():
        general.text_projection.fill_(0.01)
    save_checkpoint(general, tmp_path / "general.pt", metadata={"note": "test init"}, half=False)

    frozen = TrainConfig(model_name=MODEL, init=str(tmp_path / "general.pt"), lr=0.0, epochs=1, batch_size=8, holdout_fraction=0.0, threads=1, save_half=False)
    result = train(_toy_samples(), config=frozen, out_path=tmp_path / "tuned.pt", progress=False)
    tuned, start = _state(tmp_path / "tuned.pt"), general.state_dict()
    assert all(torch.allclose(tuned[k], start[k]) for k in start)  # lr 0: the weights are the checkpoint's
    assert result.metadata["init"]["path"] == str(tmp_path / "general.pt") and len(result.metadata["init"]["sha256"]) == 64

    scratch = TrainConfig(model_name=MODEL, lr=0.0, epochs=1, batch_size=8, holdout_fraction=0.0, threads=1, save_half=False)
    train(_toy_samples(), config=scratch, out_path=tmp_path / "scratch.pt", progress=False)
    assert not torch.allclose(_state(tmp_path / "scratch.pt")["text_projection"], start["text_projection"])


def test_a_bad_init_is_refused_before_anything_is_written(tmp_path):
    from search.clip_train import save_checkpoint
    from search.encoder import register_model_configs

    register_model_configs()
    save_checkpoint(open_clip.create_model(MODEL), tmp_path / "vit.pt", metadata={})
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    for init, message in (
        (tmp_path / "missing.pt", "no such file"),
        (tmp_path / "junk.pt", "cannot be loaded as a atlas-clip-rn checkpoint"),
        (tmp_path / "vit.pt", "cannot be loaded as a atlas-clip-rn checkpoint"),  # another architecture's weights
    ):
        config = TrainConfig(model_name="atlas-clip-rn", init=str(init), epochs=1, holdout_fraction=0.0, threads=1)
        with pytest.raises(ValueError, match=message):
            train(_toy_samples(), config=config, out_path=tmp_path / "out.pt", progress=False)
    assert not (tmp_path / "out.pt").exists() and not (tmp_path / "out.json").exists()


# --- text-only tuning: the condition first, the tone within it (equal service across tones) ---


def test_tone_targets_put_the_condition_first_and_the_named_type_within_it():
    from search.clip_train import tone_targets

    image_condition, image_type = torch.tensor([0, 0, 0, 1, 1]), torch.tensor([5, 4, 1, 5, 6])
    targets = tone_targets(torch.tensor([0, 0, 1, 2]), torch.tensor([5, 0, 6, 3]), image_condition, image_type, 0.5)
    assert torch.allclose(targets[:3].sum(dim=1), torch.ones(3))
    named = targets[0]  # condition 0 on type V
    assert named[3] == 0 and named[4] == 0  # another condition on the very type asked for is no match
    assert named[0] > named[1] > named[2] > 0  # type V, then IV, then I
    assert torch.isclose(named[1] / named[0], torch.tensor(0.5)) and torch.isclose(named[2] / named[0], torch.tensor(0.5**4))
    assert torch.allclose(targets[1, :3], torch.full((3,), 1 / 3))  # no type named: every type of the condition alike
    assert targets[2, 4] > targets[2, 3] > 0 and targets[2, :3].sum() == 0
    assert targets[3].sum() == 0  # a condition without images


def test_text_only_tuning_moves_the_text_tower_and_leaves_every_image_vector_as_it_was(tmp_path):
    from search.clip_train import save_checkpoint
    from search.encoder import register_model_configs

    register_model_configs()
    torch.manual_seed(0)
    start = open_clip.create_model(MODEL)
    save_checkpoint(start, tmp_path / "start.pt", metadata={}, half=False)
    config = TrainConfig(
        model_name=MODEL, init=str(tmp_path / "start.pt"), text_only=True, epochs=15, batch_size=8, lr=3e-3, warmup_steps=1,
        holdout_fraction=0.0, threads=1, save_half=False, image_views=1,
    )
    result = train(_toy_samples(), config=config, out_path=tmp_path / "tuned.pt", command="test", progress=False)
    tuned, before = _state(tmp_path / "tuned.pt"), start.state_dict()
    frozen = [k for k in before if k.startswith("visual.") or k == "logit_scale"]
    assert len(frozen) > 10 and all(torch.equal(tuned[k], before[k]) for k in frozen)
    assert not torch.allclose(tuned["text_projection"], before["text_projection"])
    meta = result.metadata
    assert meta["epoch_losses"][-1] < meta["epoch_losses"][0]
    assert meta["config"]["text_only"] and meta["init"]["path"] == str(tmp_path / "start.pt") and meta["command"] == "test"

    model, _, preprocess = open_clip.create_model_and_transforms(MODEL, pretrained=str(tmp_path / "tuned.pt"))
    model.eval()
    samples = _toy_samples(4)  # one image of each condition
    with torch.no_grad():
        images = model.encode_image(torch.stack([preprocess(s.load()) for s in samples]), normalize=True)
        texts = model.encode_text(open_clip.get_tokenizer(MODEL)([f"{s.meta.condition} on dark brown skin" for s in samples]), normalize=True)
    assert torch.equal((texts @ images.T).argmax(dim=1), torch.arange(4))  # each caption finds its condition


def test_text_only_tuning_needs_a_model_to_tune(tmp_path):
    config = TrainConfig(model_name=MODEL, text_only=True, epochs=1, holdout_fraction=0.0, threads=1)
    with pytest.raises(ValueError, match="give --init"):
        train(_toy_samples(), config=config, out_path=tmp_path / "out.pt", progress=False)
    assert not (tmp_path / "out.pt").exists()


# --- the full training's tone-aware targets (equal service across tones) ---------------------


def test_tone_match_is_symmetric_in_untyped_sides_and_zero_across_conditions():
    from search.clip_train import tone_match

    weights = tone_match(torch.tensor([0, 0, 1]), torch.tensor([5, 0, 5]), torch.tensor([0, 0, 0, 1]),
                         torch.tensor([5, 3, 0, 5]), 0.5)
    assert weights[0].tolist() == [1.0, 0.25, 1.0, 0.0]  # same type 1, two apart 0.25, untyped caption 1, other condition 0
    assert weights[1].tolist() == [1.0, 1.0, 1.0, 0.0]  # an untyped side matches its condition at every type
    assert weights[2].tolist() == [0.0, 0.0, 0.0, 1.0]


def test_tone_clip_loss_prefers_the_condition_over_the_tone():
    from search.clip_train import clip_loss_tone

    condition, image_type = torch.tensor([0, 0, 1]), torch.tensor([5, 1, 5])
    captions = torch.tensor([5, 1, 5])
    texts = _unit([[1, 0, 0], [0.9, 0.3, 0], [0, 0, 1]])
    # The same condition on another type close by, rather than another condition on the same type.
    by_condition = _unit([[1, 0.1, 0], [0.9, 0.35, 0], [0, 0, 1]])
    by_tone = _unit([[0.6, 0, 0.8], [0.9, 0.3, 0], [0.8, 0, 0.6]])
    scale = torch.tensor(10.0)
    good = clip_loss_tone(by_condition, texts, scale, condition, image_type, captions, 0.3)
    bad = clip_loss_tone(by_tone, texts, scale, condition, image_type, captions, 0.3)
    assert good < bad


def test_training_with_tone_targets_and_type_supcon_runs_and_records_its_terms(tmp_path):
    colours = [(200, 40, 40), (40, 200, 40)]
    samples = [
        Sample(key=f"{i}", meta=CaptionMeta(["Melanoma", "Eczema"][i % 2], fitzpatrick_type=i % 6 + 1),
               load=lambda c=colours[i % 2], i=i: PILImage.new("RGB", (40, 40), tuple(max(0, v - 20 * (i % 6)) for v in c)))
        for i in range(12)
    ]
    config = TrainConfig(model_name=MODEL, epochs=6, batch_size=6, lr=2e-3, warmup_steps=1, holdout_fraction=0.0, threads=1,
                         clip_tone_spread=0.3, supcon_type_weight=0.3)
    result = train(samples, config=config, out_path=tmp_path / "clip.pt", command="test", progress=False)
    meta = result.metadata
    assert meta["config"]["clip_tone_spread"] == 0.3 and meta["config"]["supcon_type_weight"] == 0.3
    assert all(v > 0 for v in meta["epoch_loss_terms"]["supcon_type"]) and meta["epoch_losses"][-1] < meta["epoch_losses"][0]


def test_off_topic_training_sentences_share_no_word_with_the_calibrations():
    """The relevance floor is calibrated on sentences text tuning never saw."""
    import re
    from pathlib import Path

    from search import clip_train

    source = (Path(__file__).resolve().parents[2] / "bench" / "calibrate_floor.py").read_text()
    calibration = source.split("OFF_TOPIC = [", 1)[1].split("]", 1)[0]
    # Generic words only (colours are not nouns: the calibration's "red car" and the training's
    # "red umbrella" share an adjective, which is the point of the colour pairs).
    stop = {"with", "from", "that", "this", "about", "nothing", "skin", "today"} | set(clip_train.OFF_TOPIC_COLOURS)

    def words(text):
        return {w for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 3 and w not in stop}

    ours = words(" ".join(clip_train.OFF_TOPIC_OBJECTS + clip_train.OFF_TOPIC_TOPICS + clip_train.OFF_TOPIC_OBJECT_TEMPLATES
                          + clip_train.OFF_TOPIC_TOPIC_TEMPLATES))
    assert words(calibration) and not ours & words(calibration)


def test_the_off_topic_term_pushes_unrelated_sentences_away_from_every_image(tmp_path):
    from search.clip_train import off_topic_sentences, save_checkpoint
    from search.encoder import register_model_configs

    register_model_configs()
    torch.manual_seed(0)
    start = open_clip.create_model(MODEL)
    save_checkpoint(start, tmp_path / "start.pt", metadata={}, half=False)
    sentences = off_topic_sentences(16, __import__("random").Random(1))
    tokenizer = open_clip.get_tokenizer(MODEL)

    def best_off_topic(path):
        model, _, preprocess = open_clip.create_model_and_transforms(MODEL, pretrained=str(path))
        model.eval()
        with torch.no_grad():
            images = model.encode_image(torch.stack([preprocess(s.load()) for s in _toy_samples()]), normalize=True)
            return float((model.encode_text(tokenizer(sentences), normalize=True) @ images.T).max(dim=1).values.mean())

    results = {}
    for weight in (0.0, 1.0):
        config = TrainConfig(model_name=MODEL, init=str(tmp_path / "start.pt"), text_only=True, epochs=15, batch_size=8, lr=3e-3,
                             warmup_steps=1, holdout_fraction=0.0, threads=1, save_half=False, image_views=1,
                             off_topic_weight=weight, off_topic_margin=0.3)
        train(_toy_samples(), config=config, out_path=tmp_path / f"w{weight}.pt", command="test", progress=False)
        results[weight] = best_off_topic(tmp_path / f"w{weight}.pt")
    assert results[1.0] < results[0.0] - 0.02
