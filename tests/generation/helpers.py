"""Tiny synthetic pairs and configs for fast CPU tests."""

from __future__ import annotations

import pytest
import torch

from generation.dataset import PairSet
from generation.semantic_map import Box, MapSpec, encode
from generation.train import TrainConfig, preset

VOCAB = ("acne", "melanoma", "psoriasis", "vitiligo")


def tiny_config(**overrides) -> TrainConfig:
    base = dict(image_size=32, num_downs=5, ngf=8, ndf=8, batch_size=4, steps=4, checkpoint_every=2,
                sample_every=1000, log_every=1, device="cpu", use_dropout=True, channels_last=False)
    return preset("fast", **{**base, **overrides})


def synthetic_pairs(n: int = 8, size: int = 32, seed: int = 0) -> PairSet:
    """Skin colour follows the skin type, a dark square follows the box: learnable in a few steps."""
    gen = torch.Generator().manual_seed(seed)
    images, maps = [], []
    for i in range(n):
        skin = 1 + i % 6
        x, y = (int(v) for v in torch.randint(0, size // 2, (2,), generator=gen))
        side = size // 4
        spec = MapSpec(VOCAB[i % len(VOCAB)], skin, (Box(x, y, side, side),))
        m = torch.from_numpy(encode(spec, width=size, height=size, vocabulary=VOCAB)).permute(2, 0, 1)
        img = torch.full((3, size, size), 250 - 35 * skin, dtype=torch.uint8)
        img[:, y : y + side, x : x + side] = torch.tensor([120, 30, 40 * (i % len(VOCAB))], dtype=torch.uint8).view(3, 1, 1)
        images.append(img)
        maps.append(m)
    return PairSet.from_tensors(torch.stack(images), torch.stack(maps))


@pytest.fixture
def one_torch_thread():
    """Tiny models gain nothing from a second thread, and on a busy machine torch's threads
    spin-wait for each other (see docs/benchmarks.md): run these tests on one, then restore."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
