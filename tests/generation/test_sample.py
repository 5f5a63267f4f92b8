import numpy as np
import pytest
import torch

from generation.sample import CheckpointError, generate, generator_export, generator_load, spec_map
from generation.semantic_map import MapError
from generation.train import train

from .helpers import VOCAB, synthetic_pairs, tiny_config, one_torch_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    # 64x64 with six halvings: the smallest U-Net that has a dropout block (the noise source).
    result = train(tiny_config(steps=2, image_size=64, num_downs=6), pairs=synthetic_pairs(size=64),
                   vocabulary=list(VOCAB), data_fingerprint="f", out_dir=out, progress=False)
    return result.checkpoints[-1]


def test_generate_from_spec(checkpoint):
    gen = generator_load(checkpoint, catalogue=VOCAB)
    images = generate(gen, [spec_map(gen, condition="melanoma", skin_type=6, size=0.3)] * 2, seed=0)
    assert len(images) == 2 and images[0].size == (64, 64)


def test_seeds_give_reproducible_and_different_images(checkpoint):
    gen = generator_load(checkpoint, catalogue=VOCAB)
    m = [spec_map(gen, condition="acne", skin_type=2)]
    a, b, c = generate(gen, m, seed=1), generate(gen, m, seed=1), generate(gen, m, seed=2)
    assert a[0].tobytes() == b[0].tobytes()
    assert a[0].tobytes() != c[0].tobytes()  # dropout is the noise source


def test_bad_spec_inputs(checkpoint):
    gen = generator_load(checkpoint, catalogue=VOCAB)
    with pytest.raises(MapError, match="unknown condition"):
        spec_map(gen, condition="eczema", skin_type=2)
    with pytest.raises(MapError, match="skin type"):
        spec_map(gen, condition="acne", skin_type=9)
    with pytest.raises(MapError, match="size"):
        spec_map(gen, condition="acne", skin_type=2, size=0)
    with pytest.raises(ValueError, match="64x64x3"):
        generate(gen, [np.zeros((16, 16, 3), np.uint8)])


def test_corrupted_checkpoint_is_refused(checkpoint, tmp_path):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(checkpoint.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        generator_load(broken)
    junk = tmp_path / "junk.pt"
    torch.save({"hello": 1}, junk)
    with pytest.raises(CheckpointError, match="not a dermgan"):
        generator_load(junk)
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        generator_load(tmp_path / "missing.pt")


def test_weights_not_fitting_their_description_are_refused(checkpoint, tmp_path):
    state = torch.load(checkpoint, weights_only=True)
    state["generator"]["args"]["ngf"] = 16
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    with pytest.raises(CheckpointError, match="do not fit"):
        generator_load(bad)


def test_vocabulary_mismatch_is_refused(checkpoint):
    with pytest.raises(CheckpointError, match="vocabulary does not match"):
        generator_load(checkpoint, catalogue=["acne", "melanoma"])


def test_export_is_smaller_and_gives_close_outputs(checkpoint, tmp_path):
    small = generator_export(checkpoint, tmp_path / "small.pt")
    assert small.stat().st_size < checkpoint.stat().st_size
    full, half = generator_load(checkpoint), generator_load(small)
    m = [spec_map(full, condition="acne", skin_type=4)]
    a = np.asarray(generate(full, m, stochastic=False)[0], dtype=int)
    b = np.asarray(generate(half, m, stochastic=False)[0], dtype=int)
    assert np.abs(a - b).max() <= 3
