"""Train the small offline open_clip model on (image, caption) pairs (Django-free).

These machines cannot download pretrained weights, so the default search model is a tiny
open_clip config (search/model_configs/atlas-clip-tiny.json) trained here with open_clip's
own ClipLoss on the catalogue's images and captions built from their metadata. The result is
a plain state dict that `open_clip.create_model_and_transforms(name, pretrained=PATH)` loads,
with a JSON beside it that records the command, data fingerprint, code version and config.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from atlas.skin import FITZPATRICK_TONE_WORDS, roman

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    model_name: str = "atlas-clip-tiny"  # an open_clip config name (ours are registered from model_configs/)
    epochs: int = 30  # passes over the training split
    batch_size: int = 128  # ClipLoss contrasts within a batch: bigger = more negatives
    lr: float = 1e-3  # AdamW peak learning rate (cosine decay after warmup)
    weight_decay: float = 0.1  # on matrices only; gains, biases and embeddings are not decayed
    warmup_steps: int = 50
    captions_per_image: int = 8  # phrasings drawn up front; one is sampled per image per epoch
    holdout_fraction: float = 0.2  # images kept out of training for the quality report (by hash)
    threads: int = 2  # torch CPU threads (the machine is shared)
    max_images: int = 0  # 0 = all; a cap keeps the fast preset within its time budget
    seed: int = 0
    save_half: bool = True  # fp16 weights on disk halve the file; loading casts back to fp32


PRESETS: dict[str, TrainConfig] = {
    # 3,000 demo images: 506 CPU-seconds for 40 epochs (docs/benchmarks.md), 4-9 minutes on two
    # free cores; the image cap keeps a bigger catalogue within the 15-minute budget.
    "fast": TrainConfig(epochs=40, max_images=6000),
    "full": TrainConfig(epochs=60, batch_size=256),
}


@dataclass(frozen=True)
class CaptionMeta:
    condition: str  # display name, e.g. "Melanoma"
    synonyms: tuple[str, ...] = ()
    fitzpatrick_type: int | None = None
    body_site: str = ""
    origin: str = "real"  # "real" | "synthetic"


@dataclass
class Sample:
    key: str  # stable identity (the image's sha256): drives the held-out split and the fingerprint
    meta: CaptionMeta
    load: Callable[[], object]  # returns a PIL image


@dataclass
class TrainResult:
    checkpoint: Path
    metadata: dict = field(default_factory=dict)


# --- captions -------------------------------------------------------------------------------


def tone_phrases(fitzpatrick_type: int | None) -> list[str]:
    """Ways people describe a skin type: "Fitzpatrick type V", "dark brown skin", ..."""
    if not fitzpatrick_type:
        return []
    numeral = roman(fitzpatrick_type)
    words = FITZPATRICK_TONE_WORDS.get(fitzpatrick_type, ())
    return [
        f"Fitzpatrick type {numeral}",
        f"Fitzpatrick skin type {numeral}",
        f"skin type {numeral}",
        f"type {numeral} skin",
        *(f"{word} skin" for word in words),
    ]


def caption_variants(meta: CaptionMeta, count: int, rng: random.Random) -> list[str]:
    names = [meta.condition, *meta.synonyms]
    tones = tone_phrases(meta.fitzpatrick_type)
    origin = "synthetic image" if meta.origin == "synthetic" else "clinical photograph"
    site = meta.body_site.strip().lower()
    templates = [
        "{name} on {tone}",
        "a {origin} of {name} on {tone}",
        "{name}, {tone}",
        "{name} on the {site}, {tone}",
        "{tone} with {name}",
        "a {origin} of {name} on the {site}",
        "{name}",
    ]
    captions = []
    for _ in range(count):
        template = rng.choice(templates)
        if not tones and "{tone}" in template:
            template = "a {origin} of {name}"
        if not site and "{site}" in template:
            template = template.replace(" on the {site}", "")
        captions.append(
            template.format(name=rng.choice(names), tone=rng.choice(tones) if tones else "", origin=origin, site=site)
        )
    return captions


# --- data -----------------------------------------------------------------------------------


def is_heldout(key: str, fraction: float) -> bool:
    """A stable split by content hash: the same image is held out in every run."""
    if fraction <= 0:
        return False
    bucket = int(hashlib.sha256(f"holdout:{key}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return bucket < fraction


def data_fingerprint(samples: Sequence[Sample]) -> str:
    digest = hashlib.sha256()
    for sample in sorted(samples, key=lambda s: s.key):
        digest.update(json.dumps([sample.key, asdict(sample.meta)], sort_keys=True).encode())
    return digest.hexdigest()[:16]


def code_version() -> str:
    here = Path(__file__).resolve()
    file_hash = hashlib.sha256(here.read_bytes()).hexdigest()[:12]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=here.parent, capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{commit or 'nogit'}+clip_train.py@{file_hash}"


def _load_pixels(samples: Sequence[Sample], size: int) -> np.ndarray:
    """Decode every image once to uint8 (n, size, size, 3): an epoch then costs no JPEG decoding."""
    from PIL import Image as PILImage
    from PIL import ImageOps
    from tqdm import tqdm

    out = np.zeros((len(samples), size, size, 3), dtype=np.uint8)
    for row, sample in enumerate(tqdm(samples, desc="loading images", unit="img")):
        image = sample.load().convert("RGB")
        out[row] = np.asarray(ImageOps.fit(image, (size, size), PILImage.Resampling.BICUBIC))
    return out


# --- training -------------------------------------------------------------------------------


def train(
    samples: Sequence[Sample],
    *,
    config: TrainConfig,
    out_path: Path,
    command: str = "",
    progress: bool = True,
) -> TrainResult:
    """Train on the non-held-out samples and save an open_clip-loadable checkpoint at out_path."""
    import open_clip
    import torch
    from tqdm import tqdm

    from search.encoder import register_model_configs

    started, cpu_started = time.monotonic(), time.process_time()
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    rng = random.Random(config.seed)
    register_model_configs()

    train_set = [s for s in samples if not is_heldout(s.key, config.holdout_fraction)]
    if config.max_images and len(train_set) > config.max_images:
        train_set = rng.sample(train_set, config.max_images)
    if len(train_set) < 2:
        raise ValueError(f"need at least 2 training images, found {len(train_set)} (held out: {config.holdout_fraction:.0%})")

    model, _, preprocess = open_clip.create_model_and_transforms(config.model_name)
    tokenizer = open_clip.get_tokenizer(config.model_name)
    size = model.visual.image_size[0] if isinstance(model.visual.image_size, tuple) else model.visual.image_size
    mean, std = _normalisation(preprocess)

    # A 1/8 margin around the crop gives random-crop augmentation; evaluation centre-crops.
    pixels = torch.from_numpy(_load_pixels(train_set, size + size // 8)).permute(0, 3, 1, 2).contiguous()
    tokens = torch.stack(
        [tokenizer(caption_variants(s.meta, config.captions_per_image, rng)) for s in train_set]
    )  # (n, variants, context)

    batch_size = min(config.batch_size, len(train_set))
    steps_per_epoch = max(1, len(train_set) // batch_size)
    total_steps = steps_per_epoch * config.epochs
    optimizer = torch.optim.AdamW(_param_groups(model, config.weight_decay), lr=config.lr, betas=(0.9, 0.98), eps=1e-6)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _lr_factor(step, config.warmup_steps, total_steps))
    loss_fn = open_clip.ClipLoss()
    generator = torch.Generator().manual_seed(config.seed)

    losses: list[float] = []
    model.train()
    for epoch in tqdm(range(config.epochs), desc="training", unit="epoch", disable=not progress):
        order = torch.randperm(len(train_set), generator=generator)
        epoch_loss = 0.0
        for step in range(steps_per_epoch):
            index = order[step * batch_size : (step + 1) * batch_size]
            images = _augment(pixels[index], size, generator, mean, std)
            choice = torch.randint(0, tokens.shape[1], (len(index),), generator=generator)
            text = tokens[index, choice]
            image_features, text_features, logit_scale = model(images, text)
            loss = loss_fn(image_features, text_features, logit_scale)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            with torch.no_grad():  # CLIP's clamp: a temperature past 100 makes training unstable
                model.logit_scale.clamp_(0, math.log(100))
            epoch_loss += loss.item()
        losses.append(epoch_loss / steps_per_epoch)
        logger.info("epoch %d loss %.4f", epoch + 1, losses[-1])

    metadata = {
        "model_name": config.model_name,
        "config": asdict(config),
        "command": command,
        "data_fingerprint": data_fingerprint(samples),
        "code_version": code_version(),
        "train_images": len(train_set),
        "heldout_images": sum(is_heldout(s.key, config.holdout_fraction) for s in samples),
        "epoch_losses": [round(x, 4) for x in losses],
        "seconds": round(time.monotonic() - started, 1),
        # CPU seconds over all threads: on a shared machine wall time says little; on two free
        # cores the wall time is about cpu_seconds / threads.
        "cpu_seconds": round(time.process_time() - cpu_started, 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    metadata = save_checkpoint(model, out_path, metadata=metadata, half=config.save_half)
    return TrainResult(checkpoint=out_path, metadata=metadata)


def _normalisation(preprocess) -> tuple:
    import torch

    for step in getattr(preprocess, "transforms", []):
        if hasattr(step, "mean") and hasattr(step, "std"):
            return torch.tensor(step.mean).view(1, 3, 1, 1), torch.tensor(step.std).view(1, 3, 1, 1)
    raise ValueError("the model's preprocessing has no Normalize step")


def _augment(batch, size: int, generator, mean, std):
    """Random crop + horizontal flip on uint8 tensors, then open_clip's normalisation."""
    import torch

    margin = batch.shape[-1] - size
    dx, dy = (int(v) for v in torch.randint(0, margin + 1, (2,), generator=generator))
    crops = batch[:, :, dy : dy + size, dx : dx + size].float() / 255.0
    if torch.rand(1, generator=generator).item() < 0.5:
        crops = crops.flip(-1)
    return (crops - mean) / std


def _param_groups(model, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        is_matrix = param.ndim >= 2 and "embedding" not in name and "token" not in name
        (decay if is_matrix else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _lr_factor(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def save_checkpoint(model, out_path: Path, *, metadata: dict, half: bool = True) -> dict:
    """Write the state dict and its JSON description (returned); each file appears whole (temp + rename)."""
    import torch

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu() for k, v in model.state_dict().items()}
    tmp = out_path.with_name(f".{out_path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, out_path)
    from search.encoder import file_sha256

    metadata = {**metadata, "checkpoint": out_path.name, "sha256": file_sha256(out_path), "bytes": out_path.stat().st_size}
    json_tmp = out_path.with_name(f".{out_path.name}.json.tmp")
    json_tmp.write_text(json.dumps(metadata, indent=2) + "\n")
    os.replace(json_tmp, metadata_path(out_path))
    return metadata


def metadata_path(checkpoint: Path) -> Path:
    return Path(checkpoint).with_suffix(".json")


def preset(name: str, **overrides) -> TrainConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})
