"""The automatic gates (generation.gates) on hand-made images: each gate passes what it should and
fails what it should. Django-free."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from generation import gates as gt
from generation.classifier import ConditionClassifier
from generation.evaluate import CropEncoder, CropEncoderNet

LIGHT, MEDIUM, DARK = (230, 190, 160), (200, 150, 115), (80, 55, 40)
BOX = [(22, 22, 20, 20)]  # the lesion of `skin()`, in its pixels


def skin(rgb, *, size: int = 64, seed: int = 0) -> np.ndarray:
    """A patch of skin of colour `rgb`: grain, a gentle shading wave and a darker round lesion."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    a = np.ones((size, size, 3)) * np.array(rgb, dtype=np.float64)
    a += rng.normal(0, 6, (size, size, 1)) + 8 * np.sin(xx / 7.0 + seed)[..., None]
    a[((xx - 32) ** 2 + (yy - 32) ** 2) < 100] *= 0.5
    return np.clip(a, 0, 255).astype(np.uint8)


def run(images, gate: str, *, condition="melanoma", skin_type=3, judges=None, **thresholds):
    verdict = gt.gates_run(images, condition=condition, skin_type=skin_type, boxes=[BOX] * len(images),
                           judges=judges or gt.Judges(calibration="chardon-1991"),
                           thresholds=gt.GateThresholds(**thresholds), enabled=(gate,))
    return [r[gate] for r in verdict.results]


# --- tone -----------------------------------------------------------------------------------------


def test_tone_passes_the_requested_type_and_its_neighbours_and_fails_the_rest():
    light, dark = skin(LIGHT), skin(DARK)
    assert [r["measured"] for r in run([light, dark], "tone", skin_type=1)] == [1, 6]
    assert [r["passed"] for r in run([light, dark], "tone", skin_type=1)] == [True, False]
    assert [r["passed"] for r in run([light, dark], "tone", skin_type=6)] == [False, True]
    assert [r["passed"] for r in run([light, dark], "tone", skin_type=5)] == [False, True]  # within one
    assert run([dark], "tone", skin_type=2, tone_max_difference=4)[0]["passed"]  # the threshold is a setting


def test_tone_fails_an_image_with_no_skin_to_measure():
    blue = np.zeros((64, 64, 3), np.uint8)
    blue[..., 2] = 200
    (result,) = run([blue], "tone", skin_type=3)
    assert not result["passed"] and result["measured"] is None and "too little skin" in result["reason"]


# --- condition ---------------------------------------------------------------------------------------


def colour_classifier() -> ConditionClassifier:
    """A tiny real classifier: mean red -> melanoma, green -> psoriasis, blue -> acne, constant -> eczema."""
    linear = nn.Linear(3, 4)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[9.0, 0, 0], [0, 9.0, 0], [0, 0, 9.0], [0, 0, 0]]))
        linear.bias.copy_(torch.tensor([0.0, 0, 0, 3.0]))
    net = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), linear)
    return ConditionClassifier(net, ("melanoma", "psoriasis", "acne", "eczema"), image_size=32, crop_window=64)


def solid(rgb) -> np.ndarray:
    return np.full((64, 64, 3), rgb, np.uint8)


def test_condition_passes_when_the_requested_condition_is_in_the_top_k():
    judges = gt.Judges(classifier=colour_classifier())
    red = solid((255, 0, 0))  # ranks melanoma, eczema, psoriasis, acne (ImageNet-normalised inputs)
    (first,) = run([red], "condition", condition="melanoma", judges=judges)
    assert first["passed"] and first["rank"] == 1 and first["top"][0] == "melanoma"
    ranks = {slug: run([red], "condition", condition=slug, judges=judges)[0]["rank"] for slug in ("psoriasis", "acne", "eczema")}
    assert sorted(ranks.values()) == [2, 3, 4]
    last = min(ranks, key=lambda slug: -ranks[slug])
    assert not run([red], "condition", condition=last, judges=judges)[0]["passed"]  # rank 4 > top 3
    assert run([red], "condition", condition=last, judges=judges, condition_top_k=4)[0]["passed"]


def test_gates_refuse_to_run_without_their_judges():
    with pytest.raises(gt.GateError, match="no classifier"):
        gt.gates_check_ready(("condition",), gt.Judges())
    with pytest.raises(gt.GateError, match="not trained on vitiligo"):
        gt.gates_check_ready(("condition",), gt.Judges(classifier=colour_classifier()), ["melanoma", "vitiligo"])
    with pytest.raises(gt.GateError, match="near-copy gate"):
        gt.gates_check_ready(("copy",), gt.Judges())
    with pytest.raises(gt.GateError, match="unknown gate"):
        gt.gates_check_ready(("beauty",), gt.Judges())
    gt.gates_check_ready(("tone", "defects"), gt.Judges())  # they need nothing but the pixels


# --- not a copy --------------------------------------------------------------------------------------


@pytest.fixture
def copy_judges():
    torch.manual_seed(0)
    encoder = CropEncoder(CropEncoderNet(4).eval(), "test-encoder")
    real = np.stack([skin(rgb, seed=seed) for seed, rgb in enumerate((LIGHT, MEDIUM, DARK, (170, 120, 90)))])
    tensor = torch.from_numpy(real).permute(0, 3, 1, 2).contiguous()
    index = gt.copy_index_build(encoder, tensor, ["a", "b", "c", "d"])
    return gt.Judges(encoder=encoder, copy_index=index), real


def test_a_copy_of_a_real_training_crop_fails(copy_judges):
    judges, real = copy_judges
    (copy,) = run([real[1].copy()], "copy", judges=judges)
    assert not copy["passed"] and copy["nearest"] == "b" and copy["cosine"] > 0.9999 and copy["hash_distance"] == 0
    # Brightened by 4 levels: the encoder moves a little, the hash does not.
    brighter = np.clip(real[2].astype(int) + 4, 0, 255).astype(np.uint8)
    (near,) = run([brighter], "copy", judges=judges, copy_max_cosine=1.01)
    assert not near["passed"] and near["hash_nearest"] == "c" and near["hash_distance"] <= 4


def test_a_distinct_image_passes_the_copy_gate(copy_judges):
    judges, _ = copy_judges
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[:64, :64]
    other = np.clip(np.array(MEDIUM) + 40 * np.sign(np.sin(xx / 5.0) * np.cos(yy / 9.0))[..., None]
                    + rng.normal(0, 4, (64, 64, 3)), 0, 255).astype(np.uint8)
    (result,) = run([other], "copy", judges=judges, copy_max_cosine=1.01)
    assert result["passed"] and result["hash_distance"] > 4


def test_phash_and_hamming():
    a = skin(MEDIUM, seed=1)
    assert gt.phash(a) == gt.phash(a.copy()) and 0 <= gt.phash(a) < 2**64
    assert list(gt.hamming(gt.phash(a), [gt.phash(a), gt.phash(a) ^ 0b1011])) == [0, 3]


def test_copy_index_round_trips(copy_judges, tmp_path):
    _, real = copy_judges
    judges, _ = copy_judges
    judges.copy_index.save(tmp_path / "index.npz")
    again = gt.CopyIndex.load(tmp_path / "index.npz")
    assert again.keys == judges.copy_index.keys and (again.hashes == judges.copy_index.hashes).all()
    assert np.allclose(again.features, judges.copy_index.features, atol=1e-3)


# --- defects ------------------------------------------------------------------------------------------


def test_skin_of_every_tone_has_no_defect():
    results = run([skin(LIGHT), skin(MEDIUM), skin(DARK)], "defects")
    assert [r["passed"] for r in results] == [True, True, True]


def test_a_colour_cast_fails_defects():
    green = np.clip(skin(LIGHT) * np.array([0.6, 1.0, 0.6]), 0, 255).astype(np.uint8)
    (result,) = run([green], "defects")
    assert not result["passed"] and result["found"] == ["colour cast"]


def test_a_frame_a_flat_image_and_a_checkerboard_fail_defects():
    framed = skin(MEDIUM)
    framed[:3], framed[-3:], framed[:, :3], framed[:, -3:] = 0, 0, 0, 0
    yy, xx = np.mgrid[:64, :64]
    checker = np.clip(skin(MEDIUM).astype(int) + (((xx + yy) % 2) * 50 - 25)[..., None], 0, 255).astype(np.uint8)
    found = [r.get("found") for r in run([framed, solid(MEDIUM), checker], "defects")]
    assert found == [["frame"], ["flat image"], ["checkerboard"]]
    one_side = skin(MEDIUM)
    one_side[:3] = 0  # a dark edge on one side is not a frame
    assert run([one_side], "defects")[0]["passed"]


def test_every_enabled_gate_runs_on_every_sample_and_a_sample_passes_only_if_all_pass():
    green = np.clip(skin(LIGHT) * np.array([0.6, 1.0, 0.6]), 0, 255).astype(np.uint8)
    verdict = gt.gates_run([skin(LIGHT), green, skin(DARK)], condition="melanoma", skin_type=1, boxes=[BOX] * 3,
                           judges=gt.Judges(calibration="chardon-1991"), thresholds=gt.GateThresholds(),
                           enabled=("tone", "defects"))
    assert [sorted(r) for r in verdict.results] == [["defects", "tone"]] * 3
    assert [verdict.passed(i) for i in range(3)] == [True, False, False]  # cast; wrong tone
    assert set(verdict.seconds) == {"tone", "defects"}
