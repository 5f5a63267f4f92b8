"""The augmentation study's ML side: case split, image tensors, MobileNet training, prediction.
Django-free: the service passes plain items and image loaders in.

Design (after the patent's "Synthetic Images as Data Augmentation" experiment):
- Both arms train torchvision's mobilenet_v3_small from the same initial weights (from scratch,
  or a local weights file), with the same conventional augmentation (flips, brightness /
  contrast / saturation jitter), the same optimiser and the same number of optimiser steps
  (the budget is `epochs` passes over the REAL training split). The augmented arm draws its
  batches from real + synthetic, so it sees fewer real images per step: the honest "same
  budget" comparison, not "more compute".
- Both arms are scored on the same real test split, which is split by case (patient): all
  images of a case land on one side.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image as PILImage
from torch import nn
from torchvision.models import mobilenet_v3_small

from generation.experiments.images import to_square

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ExperimentError(ValueError):
    """Input the study refuses (empty split, unreadable weights, ...); the message says why."""


@dataclass
class ClassifierConfig:
    image_size: int = 96  # square input side; images are resized (short side) and centre-cropped
    epochs: int = 12  # passes over the real training split; both arms get this many steps' worth
    batch_size: int = 64
    lr: float = 3e-3  # AdamW peak learning rate, cosine decay after a short warm-up
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.05
    jitter: float = 0.25  # brightness / contrast / saturation factors drawn from [1-j, 1+j]
    vertical_flip: bool = True  # skin photographs have no canonical "up"
    label_smoothing: float = 0.1
    weights: str = ""  # local torchvision mobilenet_v3_small state dict; "" = from scratch
    threads: int = 0  # torch CPU threads per arm, 0 = torch's default (1 when the arms run in parallel)
    parallel: bool = True  # train the two arms at once in two processes (two cores: ~2x faster than 2 threads on one)
    device: str = "cpu"
    seed: int = 0  # initial weights, batch order, augmentation draws
    n_boot: int = 1000  # bootstrap resamples for the intervals
    test_fraction: float = 0.2  # share of each condition's cases held out for testing


PRESETS: dict[str, ClassifierConfig] = {
    # On the demo atlas (3,000 images) under 20 minutes on two shared CPU cores (docs/experiments.md).
    "fast": ClassifierConfig(image_size=64, epochs=24, batch_size=64),
    # For a GPU and a real collection.
    "full": ClassifierConfig(image_size=224, epochs=40, batch_size=64, lr=2e-3),
}


def preset(name: str, **overrides) -> ClassifierConfig:
    if name not in PRESETS:
        raise ExperimentError(f"unknown preset {name!r}: choose from {sorted(PRESETS)}")
    try:
        return dataclasses.replace(PRESETS[name], **overrides)
    except TypeError as exc:
        raise ExperimentError(f"unknown setting: {exc}") from exc


# --- split ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    key: str  # stable id, e.g. the image's public id
    label: str  # condition slug
    group: str  # case id; an image without one is its own case
    skin_type: int | None = None


def _rank(group: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()


def case_split(items: Sequence[Item], *, test_fraction: float, seed: int = 0) -> tuple[list[int], list[int]]:
    """(train indices, test indices). Whole cases go to one side; per condition, a share of its
    cases (at least one when it has two or more) goes to test, chosen by a seeded hash so adding
    images to other conditions does not reshuffle this one."""
    if not 0 < test_fraction < 1:
        raise ExperimentError(f"test fraction must be between 0 and 1, got {test_fraction}")
    members: dict[str, list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        members[item.group].append(i)
    groups_of: dict[str, list[str]] = defaultdict(list)
    for group, idx in members.items():
        # A case is filed under the label of its first image (cases rarely mix conditions).
        groups_of[items[min(idx)].label].append(group)
    test_groups: set[str] = set()
    for label, groups in groups_of.items():
        if len(groups) < 2:
            continue
        ranked = sorted(groups, key=lambda g: _rank(g, seed))
        test_groups.update(ranked[: max(1, round(test_fraction * len(groups)))])
    train = [i for i, item in enumerate(items) if item.group not in test_groups]
    test = [i for i, item in enumerate(items) if item.group in test_groups]
    return train, test


# --- tensors ----------------------------------------------------------------------------------


@dataclass
class ImageSet:
    images: torch.Tensor  # N x 3 x S x S uint8
    labels: torch.Tensor  # N int64 class indices
    skin_types: list[int | None] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    @staticmethod
    def concat(a: ImageSet, b: ImageSet) -> ImageSet:
        return ImageSet(torch.cat([a.images, b.images]), torch.cat([a.labels, b.labels]),
                        a.skin_types + b.skin_types, a.keys + b.keys)


def image_set(
    loaders: Sequence[Callable[[], PILImage.Image]], labels: Sequence[int], *, size: int,
    skin_types: Sequence[int | None] = (), keys: Sequence[str] = (),
) -> ImageSet:
    arrays = [to_square(load(), size) for load in loaders]
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous() if arrays else torch.zeros(0, 3, size, size, dtype=torch.uint8)
    return ImageSet(images, torch.tensor(list(labels), dtype=torch.int64), list(skin_types) or [None] * len(arrays), list(keys))


# --- model ------------------------------------------------------------------------------------


def classifier_build(n_classes: int, *, weights: str = "", seed: int = 0) -> nn.Module:
    """mobilenet_v3_small with an n_classes head; optional local weights (the head is replaced
    when its shape differs, e.g. ImageNet's 1000 classes). Nothing is downloaded."""
    torch.manual_seed(seed)
    net = mobilenet_v3_small(num_classes=n_classes)
    for module in net.modules():
        # torchvision's BatchNorm momentum (0.01) suits long ImageNet runs; over a few hundred
        # steps the running statistics lag far behind the weights and eval-mode predictions
        # collapse onto a few classes. 0.1 (PyTorch's default) tracks them.
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = 0.1
    if weights:
        path = Path(weights)
        if not path.is_file():
            raise ExperimentError(f"no weights file at {path}")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # many kinds for a damaged or foreign file
            raise ExperimentError(f"{path.name} is not a readable state dict: {exc}") from exc
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        if not isinstance(state, dict):
            raise ExperimentError(f"{path.name} does not hold a state dict")
        own = net.state_dict()
        fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        if len(fitting) < len(own) // 2:
            raise ExperimentError(f"{path.name} does not look like mobilenet_v3_small weights "
                                  f"({len(fitting)} of {len(own)} tensors fit)")
        net.load_state_dict(fitting, strict=False)
    return net


def augment(x: torch.Tensor, gen: torch.Generator, *, jitter: float, vertical_flip: bool) -> torch.Tensor:
    """Per-sample flips and brightness / contrast / saturation jitter on a float [0, 1] batch."""
    n = x.shape[0]

    def draw(lo: float, hi: float) -> torch.Tensor:
        return (torch.rand(n, 1, 1, 1, generator=gen) * (hi - lo) + lo).to(x.device)

    flip = draw(0, 1) < 0.5
    x = torch.where(flip, x.flip(3), x)
    if vertical_flip:
        x = torch.where(draw(0, 1) < 0.5, x.flip(2), x)
    if jitter > 0:
        x = x * draw(1 - jitter, 1 + jitter)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * draw(1 - jitter, 1 + jitter) + mean
        grey = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
        x = grey + (x - grey) * draw(1 - jitter, 1 + jitter)
    return x.clamp(0, 1)


def _normalise(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def _lr_at(step: int, total: int, cfg: ClassifierConfig) -> float:
    warm = max(1, int(cfg.warmup_fraction * total))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


@dataclass
class TrainLog:
    steps: int
    seconds: float
    losses: list[float]  # mean loss per 10 % of training


def classifier_train(
    cfg: ClassifierConfig, data: ImageSet, *, n_classes: int, steps: int, progress: Callable[[str], None] | None = None
) -> tuple[nn.Module, TrainLog]:
    if len(data) == 0:
        raise ExperimentError("nothing to train on: the training set is empty")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device(cfg.device)
    net = classifier_build(n_classes, weights=cfg.weights, seed=cfg.seed).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    order: list[int] = []
    rng = random.Random(cfg.seed)
    losses, window, started = [], [], time.perf_counter()
    report_every = max(1, steps // 10)
    net.train()
    for step in range(steps):
        if len(order) < cfg.batch_size:
            fresh = list(range(len(data)))
            rng.shuffle(fresh)
            order.extend(fresh)
        idx = torch.tensor(order[: cfg.batch_size])
        del order[: cfg.batch_size]
        x = augment(data.images[idx].float().div_(255), gen, jitter=cfg.jitter, vertical_flip=cfg.vertical_flip)
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, steps, cfg)
        loss = F.cross_entropy(net(_normalise(x.to(device))), data.labels[idx].to(device), label_smoothing=cfg.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        window.append(loss.item())
        if (step + 1) % report_every == 0 or step + 1 == steps:
            losses.append(float(np.mean(window)))
            window = []
            if progress:
                progress(f"step {step + 1}/{steps} loss {losses[-1]:.3f} ({time.perf_counter() - started:.0f} s)")
    bn_recalibrate(net, data, batch_size=cfg.batch_size, seed=cfg.seed)
    return net, TrainLog(steps, time.perf_counter() - started, losses)


@torch.no_grad()
def bn_recalibrate(net: nn.Module, data: ImageSet, *, batch_size: int, batches: int = 20, seed: int = 0) -> None:
    """Recompute BatchNorm running statistics with the final weights (cumulative average over
    `batches` un-augmented training batches). After a short run the running averages describe
    weights from many steps ago, and eval-mode predictions collapse onto a few classes."""
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average
    device = next(net.parameters()).device
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    net.train()
    for start in range(0, min(len(data), batches * batch_size), batch_size):
        idx = order[start : start + batch_size]
        if len(idx) > 1:
            net(_normalise(data.images[idx].float().div(255).to(device)))
    net.eval()


@torch.inference_mode()
def classifier_predict(net: nn.Module, images: torch.Tensor, *, batch_size: int = 256) -> np.ndarray:
    net.eval()
    device = next(net.parameters()).device
    out = [net(_normalise(images[i : i + batch_size].float().div(255).to(device))).argmax(1).cpu()
           for i in range(0, len(images), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.int64)


def steps_for(cfg: ClassifierConfig, n_real_train: int) -> int:
    """The shared budget: `epochs` passes over the real training split."""
    return max(1, cfg.epochs * math.ceil(n_real_train / cfg.batch_size))


@dataclass
class ArmResult:
    name: str
    predictions: np.ndarray
    log: TrainLog
    n_train: int


def study_run(
    cfg: ClassifierConfig, *, train: ImageSet, synthetic: ImageSet, test: ImageSet, n_classes: int,
    progress: Callable[[str], None] | None = None,
) -> tuple[ArmResult, ArmResult]:
    """Baseline (real train) and augmented (real + synthetic), same steps, same init, same test."""
    if len(test) == 0:
        raise ExperimentError("the test split is empty: too few cases per condition")
    if len(synthetic) == 0:
        raise ExperimentError("no synthetic training images: generate some (--generate N) or run gap filling first")
    steps = steps_for(cfg, len(train))
    jobs = [("baseline", train), ("augmented", ImageSet.concat(train, synthetic))]
    if cfg.parallel:
        return _run_parallel(cfg, jobs, test, n_classes, steps, progress)
    arms = [_run_arm(cfg, name, data, test.images, n_classes, steps, progress) for name, data in jobs]
    return arms[0], arms[1]


def _run_arm(cfg, name, data, test_images, n_classes, steps, progress) -> ArmResult:
    say = (lambda line: progress(f"[{name}] {line}")) if progress else None
    net, log = classifier_train(cfg, data, n_classes=n_classes, steps=steps, progress=say)
    return ArmResult(name, classifier_predict(net, test_images), log, len(data))


def _run_parallel(cfg, jobs, test, n_classes, steps, progress) -> tuple[ArmResult, ArmResult]:
    """One process per arm, one thread each. On a small CPU, two single-threaded trainings
    beat two threads on one (depthwise convolutions parallelise poorly; under load, threads
    oversubscribe). Spawned, not forked: OpenMP state does not survive a fork."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    arm_cfg = dataclasses.replace(cfg, threads=cfg.threads or 1, parallel=False)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=len(jobs), mp_context=ctx) as pool:
        futures = [pool.submit(_run_arm, arm_cfg, name, data, test.images, n_classes, steps, None) for name, data in jobs]
        arms = [f.result() for f in futures]
    if progress:
        for arm in arms:
            progress(f"[{arm.name}] {arm.log.steps} steps in {arm.log.seconds:.0f} s, final loss {arm.log.losses[-1]:.3f}")
    return arms[0], arms[1]
