"""Variety where gap filling needs it: varied layouts, noisy generators through the services,
and sweeps straight after `make run` (no training set built)."""

import json
import shutil

import numpy as np
import pytest

from generation.gap_maps import RealLayout, gap_map
from generation.semantic_map import Box, decode
from generation.services import GanError, gan_dataset_build, gan_sweep, gan_train, images_generate, images_generate_from_map

from .helpers import one_torch_thread  # noqa: F401
from .test_services import TINY, catalogue, gan_root  # noqa: F401

VOCAB = ("acne", "melanoma", "psoriasis")
LAYOUTS = [RealLayout(f"k{i}", 256, 256, (Box(60 + 10 * i, 70, 50, 40), Box(150, 160, 30, 30))) for i in range(4)]
NOISY = dict(TINY, image_size=64, num_downs=6, noise_channels=1, latent_dim=4, use_dropout=False, lambda_ms=1.0)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _map(seed, vary=True):
    return gap_map(condition="melanoma", skin_type=5, layouts=LAYOUTS, vocabulary=VOCAB, size=128, window=128,
                   vary_size=vary, seed=seed)


def test_varied_maps_are_reproducible_valid_and_different():
    assert np.array_equal(_map(3).semantic_map, _map(3).semantic_map)
    maps = [_map(seed) for seed in range(30)]
    layouts = {json.dumps(m.params["boxes"]) for m in maps}
    assert len(layouts) == 30  # no two samples share a layout
    assert any(m.params["extra_box_from"] for m in maps)  # sometimes one more lesion
    for m in maps:
        spec = decode(m.semantic_map, vocabulary=VOCAB)  # every box inside the map, the right labels
        assert spec.condition == "melanoma" and spec.skin_type == 5


def test_unvaried_maps_keep_the_real_layout():
    plain = _map(3, vary=False)
    assert plain.params["size_scale"] == 1.0 and plain.params["extra_box_from"] is None
    assert not plain.params["layout_varied"]


def test_noisy_generator_gives_varied_images_through_the_service(catalogue):  # noqa: F811
    gan_dataset_build(window=64, crops_per_image=1)
    gan_train(preset="fast", steps=2, overrides=NOISY, progress=False)
    images = images_generate(condition="melanoma", skin_type=6, count=4, seed=1)
    assert len({im.tobytes() for im in images}) == 4
    again = images_generate(condition="melanoma", skin_type=6, count=4, seed=1)
    assert [im.tobytes() for im in images] == [im.tobytes() for im in again]


def test_a_map_of_another_size_is_refused(catalogue):  # noqa: F811
    gan_dataset_build(window=64, crops_per_image=1)
    gan_train(preset="fast", steps=2, overrides=NOISY, progress=False)
    with pytest.raises(GanError, match="64x64"):
        images_generate_from_map(semantic_map=np.zeros((128, 128, 3), np.uint8))


def test_sweeps_work_without_a_built_training_set(catalogue, gan_root, tmp_path):  # noqa: F811
    gan_dataset_build(window=64, crops_per_image=1)
    gan_train(preset="fast", steps=2, overrides=NOISY, progress=False)
    shutil.rmtree(gan_root / "datasets")  # as after `make run`: a shipped checkpoint, no training set
    out = gan_sweep(kind="skin-type", out=tmp_path / "fig6.png")
    described = json.loads(out.with_suffix(".json").read_text())
    assert described["rows"] == ["melanoma", "psoriasis"]  # conditions with real examples in the catalogue
    assert gan_sweep(kind="size", conditions=["melanoma"], out=tmp_path / "fig7.png").exists()
