"""Precise BatchNorm statistics for export (train.recalibrate_batchnorm)."""

import torch

from generation.dataset import to_float
from generation.networks import define_G
from generation.train import recalibrate_batchnorm

from .helpers import synthetic_pairs, tiny_config, one_torch_thread  # noqa: F401


def _gap(G, pairs):
    x = to_float(pairs.maps)
    with torch.no_grad():
        G.eval()
        ev = G(x)
        G.train()
        tr = G(x)
    G.eval()
    return float((ev - tr).abs().mean())


def test_recalibrated_statistics_bring_eval_mode_to_train_mode(one_torch_thread):
    cfg = tiny_config(use_dropout=False, batch_size=8, flip=False)
    pairs = synthetic_pairs(n=8)
    G = define_G(**cfg.generator_args())
    for m in G.modules():  # statistics from some other distribution, as after a drifting run
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.fill_(0.5)
            m.running_var.fill_(3.0)
    before = _gap(G, pairs)
    assert recalibrate_batchnorm(G, pairs, cfg, batches=4) > 0
    after = _gap(G, pairs)
    assert after < before / 5
    assert all(m.momentum == 0.1 for m in G.modules() if isinstance(m, torch.nn.BatchNorm2d))  # restored


def test_a_generator_without_batchnorm_is_left_alone():
    cfg = tiny_config(norm="instance")
    G = define_G(**cfg.generator_args())
    state = {k: v.clone() for k, v in G.state_dict().items()}
    assert recalibrate_batchnorm(G, synthetic_pairs(n=4), cfg, batches=2) == 0
    assert all(torch.equal(v, G.state_dict()[k]) for k, v in state.items())
