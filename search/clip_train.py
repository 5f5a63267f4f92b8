"""Train the small offline open_clip model on (image, caption) pairs (Django-free).

These machines cannot download pretrained weights, so the default search model is a small
open_clip config (search/model_configs/atlas-clip-rn.json: a 128 px convolutional image tower,
open_clip's ModifiedResNet, and a 2-layer text transformer) trained here on the catalogue's
images and captions built from their metadata. Three terms use the labels we have:

- the CLIP loss between images and captions, where an image and a caption of the same condition
  and skin type count as a match (open_clip's ClipLoss would treat them as negatives);
- a supervised contrastive term on image embeddings: images of the same condition attract,
  whatever the skin tone, so photo and "more like this" searches find the condition;
- classification of each image among the condition names, with the text tower as the
  classifier: the name of a condition and its images meet in one place.

Images are augmented in ways that keep the skin tone (search/clip_augment.py). Batches are
drawn with weights that soften the imbalance of conditions and skin types. `init` starts from
any local open_clip checkpoint instead (fine-tuning a general model on real photographs).

The result is a plain state dict that `open_clip.create_model_and_transforms(name,
pretrained=PATH)` loads, with a JSON beside it that records the command, data fingerprint,
code version and config. Nothing here imports Django or Celery.
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
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from atlas.skin import FITZPATRICK_TONE_WORDS, roman
from search.clip_augment import AugmentConfig, augment

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    model_name: str = "atlas-clip-rn"  # an open_clip config name (ours are registered from model_configs/)
    init: str = ""  # a local open_clip checkpoint of model_name to start from (fine-tuning); "" = random init
    epochs: int = 30  # passes over the training split (an epoch = as many draws as training images)
    batch_size: int = 128  # contrastive terms compare within a batch: bigger = more negatives
    lr: float = 1e-3  # AdamW peak learning rate (cosine decay after warmup)
    weight_decay: float = 0.1  # on matrices only; gains, biases and embeddings are not decayed
    warmup_steps: int = 50
    captions_per_image: int = 8  # phrasings drawn up front; one is sampled per image per step
    holdout_fraction: float = 0.2  # images kept out of training for the quality report (by hash)
    threads: int = 2  # torch CPU threads (the machine is shared)
    max_images: int = 0  # 0 = all; a cap keeps the fast preset within its time budget
    seed: int = 0
    save_half: bool = True  # fp16 weights on disk halve the file; loading casts back to fp32
    load_scale: float = 1.5  # images are decoded once at this multiple of the input size: crops keep detail
    label_targets: bool = True  # CLIP loss: same condition + skin type = a match (False = open_clip's ClipLoss)
    # CLIP loss targets that put the condition first and the tone within it: a caption naming
    # type t matches its condition's images of type s with weight clip_tone_spread^|t-s| (0 =
    # the grouped targets above, where every other type of the condition is a mismatch).
    clip_tone_spread: float = 0.0
    supcon_type_weight: float = 0.0  # supervised contrastive on (condition, skin type): separates neighbouring types within a condition
    supcon_weight: float = 1.0  # supervised contrastive term on image embeddings (positives: same condition)
    supcon_temperature: float = 0.1
    condition_weight: float = 0.5  # each image classified among the condition names through the text tower
    balance: float = 0.5  # draw weight = (images of its condition)^-balance x (images of its skin type)^-balance
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    cpu_budget_seconds: float = 0  # the run's CPU-time budget: the lr decays within it, then training stops and saves
    wall_budget_seconds: float = 0  # the same for wall-clock time (a shared machine); 0 = no limit
    device: str = "cpu"  # "cuda" to fine-tune a large checkpoint on a GPU; augmentation stays on the CPU
    # Text-only tuning (`train_text`): the image tower of `init` is frozen, so every image vector
    # (and photo and "more like this" search) stays exactly as it was; only the text tower learns.
    text_only: bool = False
    tone_spread: float = 0.5  # a caption naming type t matches its condition's images of type s with weight tone_spread^|t-s|
    tone_free: float = 0.2  # share of text-only captions that name no skin type (they match the condition at every type)
    image_views: int = 2  # augmented views per training image, besides the plain one, that captions are ranked against
    # Text-only tuning: sentences about anything but skin should match no image, so the relevance
    # floor can tell them from real questions (the tone-aware targets blurred that: 92 % of
    # off-topic sentences caught before, 44 % after; docs/experiments.md, "Relevance floor").
    off_topic_weight: float = 1.0
    off_topic_margin: float = 0.15  # an off-topic sentence's best cosine should stay this far below a caption's (median)


# Text-only tuning's schedule (`train_clip --init CHECKPOINT --text-only`): 30 epochs of captions
# with a short warmup; tone_spread 0.5 and the off-topic term chosen on the held-out split
# (docs/experiments.md, "Equal service across tones").
TEXT_TUNE = dict(epochs=30, warmup_steps=20)

# The old recipe (64 px ViT, ClipLoss on captions only, crop + flip): kept for comparison runs.
CAPTIONS_ONLY = dict(label_targets=False, supcon_weight=0.0, condition_weight=0.0, balance=0.0)

PRESETS: dict[str, TrainConfig] = {
    # The demo atlas (~2,400 training images): about 25 CPU-minutes for 50 epochs of the
    # 128 px ResNet (docs/benchmarks.md); the budget stops a slower machine at 55 CPU-minutes.
    # Tone-aware targets and the (condition, type) term: docs/experiments.md, "Equal service across tones".
    "fast": TrainConfig(epochs=50, max_images=6000, warmup_steps=100, cpu_budget_seconds=55 * 60,
                        clip_tone_spread=0.3, supcon_type_weight=0.5),
    "full": TrainConfig(epochs=100, batch_size=256, warmup_steps=100, clip_tone_spread=0.3, supcon_type_weight=0.5),
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
    key: str  # stable identity (Image.training_identity): drives the held-out split and the fingerprint
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


# Things that are not skin, for the off-topic term of text-only tuning. Kept apart from the
# calibration's sentences (bench/calibrate_floor.py OFF_TOPIC) so the floor is measured on
# sentences the model never saw; tests/search/test_clip_train.py checks they share no noun.
OFF_TOPIC_OBJECTS = (
    "lamp", "dog", "sailing boat", "coffee mug", "violin", "running shoe", "garden hose", "bookshelf", "umbrella",
    "steam locomotive", "washing machine", "tennis racket", "smartphone", "office building", "wind turbine", "goldfish",
    "world map", "pencil sharpener", "teapot", "helicopter", "motorbike", "kettle", "tractor", "lighthouse", "backpack",
    "candle", "balloon", "sports jacket", "fire engine", "post box",
)
OFF_TOPIC_TOPICS = (
    "interest rates", "the election", "a recipe for lasagne", "a bus schedule", "a software update", "a holiday in Spain",
    "the rules of cricket", "a piano concerto", "a horse race", "a spreadsheet", "a snowy forest", "a city skyline",
    "a plate of rice", "a stack of pancakes", "a glass of orange juice", "a parking ticket", "a rugby stadium",
    "a dog in the park", "a birthday party", "the moon landing",
)
# Colours are skin words too ("red rash", "white patches"): paired with objects they teach the
# text tower that the thing named, not the colour, decides whether a sentence is about skin.
OFF_TOPIC_COLOURS = ("red", "green", "blue", "yellow", "white", "black", "brown", "pink", "purple", "orange", "grey", "silver")
OFF_TOPIC_OBJECT_TEMPLATES = ("a {c} {o}", "a {o}", "a photo of a {c} {o}", "the {o} is {c}", "a {c} {o} on a table",
                              "how to choose a {o}")
OFF_TOPIC_TOPIC_TEMPLATES = ("{t}", "news about {t}", "a picture of {t}")


def off_topic_sentences(count: int, rng: random.Random) -> list[str]:
    sentences = []
    for _ in range(count):
        if rng.random() < 0.6:
            template = rng.choice(OFF_TOPIC_OBJECT_TEMPLATES)
            sentences.append(template.format(c=rng.choice(OFF_TOPIC_COLOURS), o=rng.choice(OFF_TOPIC_OBJECTS)))
        else:
            sentences.append(rng.choice(OFF_TOPIC_TOPIC_TEMPLATES).format(t=rng.choice(OFF_TOPIC_TOPICS)))
    return sentences


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
    digest = hashlib.sha256()
    for name in ("clip_train.py", "clip_augment.py"):
        digest.update((here.parent / name).read_bytes())
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=here.parent, capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{commit or 'nogit'}+clip_train.py,clip_augment.py@{digest.hexdigest()[:12]}"


def _load_pixels(samples: Sequence[Sample], size: int, *, progress: bool = True) -> np.ndarray:
    """Decode every image once to uint8 (n, size, size, 3): an epoch then costs no JPEG decoding."""
    from PIL import Image as PILImage
    from PIL import ImageOps
    from tqdm import tqdm

    out = np.zeros((len(samples), size, size, 3), dtype=np.uint8)
    for row, sample in enumerate(tqdm(samples, desc="loading images", unit="img", disable=not progress)):
        image = sample.load().convert("RGB")
        out[row] = np.asarray(ImageOps.fit(image, (size, size), PILImage.Resampling.BICUBIC))
    return out


def draw_weights(samples: Sequence[Sample], balance: float) -> np.ndarray:
    """Per-image draw weights that soften imbalance: (n of its condition x n of its skin type)^-balance."""
    by_condition = Counter(s.meta.condition for s in samples)
    by_type = Counter(s.meta.fitzpatrick_type for s in samples)
    weights = np.array(
        [(by_condition[s.meta.condition] * by_type[s.meta.fitzpatrick_type]) ** -balance for s in samples], dtype=np.float64
    )
    return weights / weights.sum()


# --- losses ---------------------------------------------------------------------------------


def clip_loss(image_features, text_features, logit_scale, groups=None):
    """Symmetric image<->caption cross-entropy; with `groups`, every pair of one group is a match.

    Without groups (or with all groups distinct) this is open_clip's ClipLoss: image i matches
    caption i only. Two images of melanoma on type V skin in one batch would then push each
    other's captions away although the captions say the same thing; with groups = (condition,
    skin type) both captions are targets, weighted equally.
    """
    import torch

    logits = logit_scale * image_features @ text_features.T
    if groups is None:
        targets = torch.eye(len(logits), dtype=logits.dtype, device=logits.device)
    else:
        targets = (groups[:, None] == groups[None, :]).to(logits.dtype)
        targets = targets / targets.sum(dim=1, keepdim=True)
    return (_soft_cross_entropy(logits, targets) + _soft_cross_entropy(logits.T, targets.T)) / 2


def tone_match(condition_a, type_a, condition_b, type_b, spread: float):
    """(a, b) weights: 0 across conditions; within one, spread^|type difference|, and 1 where
    either side names no type (type 0). Rows are not normalised."""
    import torch

    distance = (type_a[:, None] - type_b[None, :]).abs().to(torch.float32)
    weights = torch.pow(torch.tensor(float(spread)), distance)
    untyped = (type_a == 0)[:, None] | (type_b == 0)[None, :]
    weights = torch.where(untyped, torch.ones_like(weights), weights)
    return weights * (condition_a[:, None] == condition_b[None, :])


def clip_loss_tone(image_features, text_features, logit_scale, condition, image_type, caption_type, spread: float):
    """The CLIP loss with `tone_match` targets in both directions: image i and caption i are
    always a match; other pairs of one condition are partial matches by type distance."""
    logits = logit_scale * image_features @ text_features.T
    weights = tone_match(condition, image_type, condition, caption_type, spread)  # (images, captions)
    to_text = weights / weights.sum(dim=1, keepdim=True)
    to_image = weights.T / weights.T.sum(dim=1, keepdim=True)
    return (_soft_cross_entropy(logits, to_text) + _soft_cross_entropy(logits.T, to_image)) / 2


def _soft_cross_entropy(logits, targets):
    import torch.nn.functional as F

    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def tone_targets(query_condition, query_type, image_condition, image_type, spread: float):
    """(queries, images) target weights for captions "CONDITION on TONE skin", each row summing to 1.

    A caption matches only images of its condition; among those, images of the named type
    weigh 1 and others spread^|type difference| (type 0 = no type named: every type weighs 1).
    So "acne on very dark skin" ranks acne on type V above eczema on type VI: the condition
    comes first and the tone orders within it, and a type with few images of a condition
    still finds the condition (the grouped CLIP loss made all other types negatives, which
    taught the text tower to rank by tone first: docs/experiments.md, "Equal service").
    A row whose condition has no image is all zeros.
    """
    weights = tone_match(query_condition, query_type, image_condition, image_type, spread)
    return weights / weights.sum(dim=1, keepdim=True).clamp(min=1e-12)


def supcon_loss(features, labels, temperature: float):
    """Supervised contrastive loss (Khosla et al. 2020, "L_out") over L2-normalised features.

    Each anchor's positives are the other images with its label; anchors without any are skipped.
    """
    import torch

    n = len(features)
    self_mask = torch.eye(n, dtype=torch.bool, device=features.device)
    similarity = (features @ features.T / temperature).masked_fill(self_mask, float("-inf"))
    log_prob = similarity - torch.logsumexp(similarity, dim=1, keepdim=True)
    positives = (labels[:, None] == labels[None, :]) & ~self_mask
    counts = positives.sum(dim=1)
    has_positive = counts > 0
    if not has_positive.any():
        return features.sum() * 0.0
    per_anchor = log_prob.masked_fill(~positives, 0.0).sum(dim=1) / counts.clamp(min=1)
    return -per_anchor[has_positive].mean()


# --- training -------------------------------------------------------------------------------


def build_model(config: TrainConfig):
    """(model, preprocess) from the config name, random or from the local `init` checkpoint."""
    import open_clip

    from search.encoder import register_model_configs

    register_model_configs()
    if config.model_name not in open_clip.list_models():
        raise ValueError(f"unknown open_clip model {config.model_name!r}")
    if not config.init:
        model, _, preprocess = open_clip.create_model_and_transforms(config.model_name)
        return model, preprocess
    init = Path(config.init)
    if not init.is_file():
        raise ValueError(f"--init {init}: no such file (a local open_clip checkpoint of {config.model_name}; nothing is downloaded)")
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(config.model_name, pretrained=str(init))
    except Exception as exc:  # noqa: BLE001 - open_clip raises RuntimeError, KeyError, pickle errors...
        raise ValueError(f"--init {init} cannot be loaded as a {config.model_name} checkpoint: {exc}") from exc
    return model, preprocess


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

    if config.text_only:
        return train_text(samples, config=config, out_path=out_path, command=command, progress=progress)
    started, cpu_started = time.monotonic(), time.process_time()
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    rng = random.Random(config.seed)
    train_set = _training_split(samples, config, rng)

    model, preprocess = build_model(config)
    device = config.device
    model.to(device)
    tokenizer = open_clip.get_tokenizer(config.model_name)
    size, mean, std = _input_size(preprocess), *_normalisation(preprocess)

    pixels = torch.from_numpy(_load_pixels(train_set, round(size * config.load_scale), progress=progress))
    pixels = pixels.permute(0, 3, 1, 2).contiguous()
    variants = [caption_variants(s.meta, config.captions_per_image, rng) for s in train_set]
    tokens = torch.stack([tokenizer(v) for v in variants])  # (n, variants, context)
    # The skin type each caption names (0 = none), for the tone-aware CLIP targets.
    caption_type = torch.tensor([
        [s.meta.fitzpatrick_type if any(p in c for p in tone_phrases(s.meta.fitzpatrick_type)) else 0 for c in v]
        for s, v in zip(train_set, variants)
    ])
    conditions = sorted({s.meta.condition for s in train_set})
    condition_of = torch.tensor([conditions.index(s.meta.condition) for s in train_set])
    skin_type_of = torch.tensor([s.meta.fitzpatrick_type or 0 for s in train_set])
    groups = condition_of * 10 + skin_type_of  # one id per (condition, skin type)
    condition_tokens = tokenizer(conditions).to(device)
    weights = torch.from_numpy(draw_weights(train_set, config.balance))

    batch_size = min(config.batch_size, len(train_set))
    steps_per_epoch = max(1, len(train_set) // batch_size)
    total_steps = steps_per_epoch * config.epochs
    optimizer = torch.optim.AdamW(_param_groups(model, config.weight_decay), lr=config.lr, betas=(0.9, 0.98), eps=1e-6)
    generator = torch.Generator().manual_seed(config.seed)

    def budget_used(step: int) -> float:
        return _budget_used(step, total_steps, config, started, cpu_started)

    def batch_loss(index) -> dict:
        images = ((augment(pixels[index], size, generator, config.augment) - mean) / std).to(device)
        labels, pair_groups = condition_of[index].to(device), groups[index].to(device)
        choice = torch.randint(0, tokens.shape[1], (len(index),), generator=generator)
        # (image features, text features, logit scale[, logit bias]): normalised features.
        image_features, text_features, logit_scale = model(images, tokens[index, choice].to(device))[:3]
        if config.clip_tone_spread:
            parts = {"clip": clip_loss_tone(image_features, text_features, logit_scale, labels, skin_type_of[index].to(device),
                                            caption_type[index, choice].to(device), config.clip_tone_spread)}
        else:
            parts = {"clip": clip_loss(image_features, text_features, logit_scale, pair_groups if config.label_targets else None)}
        if config.supcon_weight:
            parts["supcon"] = config.supcon_weight * supcon_loss(image_features, labels, config.supcon_temperature)
        if config.supcon_type_weight:
            parts["supcon_type"] = config.supcon_type_weight * supcon_loss(image_features, pair_groups, config.supcon_temperature)
        if config.condition_weight:
            prototypes = model.encode_text(condition_tokens, normalize=True)
            logits = logit_scale * image_features @ prototypes.T
            parts["condition"] = config.condition_weight * torch.nn.functional.cross_entropy(logits, labels)
        return parts

    losses: list[float] = []
    terms: dict[str, list[float]] = {"clip": [], "supcon": [], "condition": []}
    if config.supcon_type_weight:
        terms["supcon_type"] = []
    stopped_early, step = "", 0
    model.train()
    for epoch in tqdm(range(config.epochs), desc="training", unit="epoch", disable=not progress):
        sums, done = {"total": 0.0, "clip": 0.0, "supcon": 0.0, "supcon_type": 0.0, "condition": 0.0}, 0
        for _ in range(steps_per_epoch):
            # The cosine decay follows the budget too, so a slow machine still anneals in time.
            used = budget_used(step)
            if used >= 1.0 and step > 0:
                break
            for group in optimizer.param_groups:
                group["lr"] = config.lr * _lr_factor(step, config.warmup_steps, used)
            parts = batch_loss(torch.multinomial(weights, batch_size, replacement=False, generator=generator))
            loss = sum(parts.values())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():  # CLIP's clamp: a temperature past 100 makes training unstable
                model.logit_scale.clamp_(0, math.log(100))
            step, done = step + 1, done + 1
            sums["total"] += loss.item()
            for name, value in parts.items():
                sums[name] += value.item()
        losses.append(sums["total"] / done)
        for name in terms:
            terms[name].append(round(sums[name] / done, 4))
        logger.info("epoch %d loss %.4f (%s)", epoch + 1, losses[-1], ", ".join(f"{k} {v[-1]:.3f}" for k, v in terms.items()))
        if step < total_steps and budget_used(step) >= 1.0:
            stopped_early = (
                f"at step {step} of {total_steps} (epoch {epoch + 1} of {config.epochs}): the budget was spent "
                f"({time.process_time() - cpu_started:.0f} CPU-s, {time.monotonic() - started:.0f} s)"
            )
            logger.warning("training stopped early %s", stopped_early)
            break

    metadata = _run_metadata(
        samples, config, command=command, conditions=conditions, train_images=len(train_set), losses=losses, terms=terms,
        stopped_early=stopped_early, started=started, cpu_started=cpu_started,
    )
    metadata = save_checkpoint(model, out_path, metadata=metadata, half=config.save_half)
    return TrainResult(checkpoint=out_path, metadata=metadata)


def train_text(
    samples: Sequence[Sample],
    *,
    config: TrainConfig,
    out_path: Path,
    command: str = "",
    progress: bool = True,
) -> TrainResult:
    """Tune only the text tower of the `init` checkpoint, against its frozen image tower.

    The training images are embedded once (plain, as search embeds them, plus `image_views`
    augmented views); each step draws captions evenly over (condition, skin type), so every
    type is asked about equally however few images it has, and ranks all those vectors
    against each caption with `tone_targets`. Image vectors, and so photo search, "more like
    this" and the index, are unchanged; only what words find moves. Minutes of CPU, where
    the whole model takes half an hour.
    """
    import open_clip
    import torch
    from tqdm import tqdm

    if not config.init:
        raise ValueError("text-only training tunes an existing model: give --init CHECKPOINT")
    started, cpu_started = time.monotonic(), time.process_time()
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    rng = random.Random(config.seed)
    train_set = _training_split(samples, config, rng)

    model, preprocess = build_model(config)
    device = config.device
    model.to(device).eval()  # BatchNorm statistics of the image tower stay as trained
    tokenizer = open_clip.get_tokenizer(config.model_name)
    generator = torch.Generator().manual_seed(config.seed)
    features = _embed_views(model, preprocess, train_set, config, generator, progress=progress)  # (n, views, dim)
    views = features.shape[1]
    conditions = sorted({s.meta.condition for s in train_set})
    image_condition = torch.tensor([conditions.index(s.meta.condition) for s in train_set]).repeat_interleave(views).to(device)
    image_type = torch.tensor([s.meta.fitzpatrick_type or 0 for s in train_set]).repeat_interleave(views).to(device)
    features = features.reshape(-1, features.shape[-1]).to(device)
    # What a caption about a condition may say beside its name: synonyms, sites and origins seen with it.
    about = {
        name: (
            next(s.meta.synonyms for s in train_set if s.meta.condition == name),
            sorted({s.meta.body_site for s in train_set if s.meta.condition == name}),
            sorted({s.meta.origin for s in train_set if s.meta.condition == name}),
        )
        for name in conditions
    }

    for name, param in model.named_parameters():
        param.requires_grad_(not _is_frozen_in_text_tuning(name))
    optimizer = torch.optim.AdamW(_param_groups(model, config.weight_decay), lr=config.lr, betas=(0.9, 0.98), eps=1e-6)
    logit_scale = model.logit_scale.exp().detach()
    batch_size = config.batch_size
    steps_per_epoch = max(1, len(train_set) // batch_size)
    total_steps = steps_per_epoch * config.epochs

    def captions(count: int):
        chosen, types, texts = [], [], []
        for _ in range(count):
            name = rng.choice(conditions)
            skin_type = 0 if rng.random() < config.tone_free else rng.randint(1, 6)
            synonyms, sites, origins = about[name]
            meta = CaptionMeta(name, synonyms, skin_type or None, rng.choice(sites), rng.choice(origins))
            chosen.append(conditions.index(name))
            types.append(skin_type)
            texts.append(caption_variants(meta, 1, rng)[0])
        return torch.tensor(chosen, device=device), torch.tensor(types, device=device), tokenizer(texts).to(device)

    losses: list[float] = []
    stopped_early, step = "", 0
    for epoch in tqdm(range(config.epochs), desc="tuning the text tower", unit="epoch", disable=not progress):
        total, done = 0.0, 0
        for _ in range(steps_per_epoch):
            used = _budget_used(step, total_steps, config, started, cpu_started)
            if used >= 1.0 and step > 0:
                break
            for group in optimizer.param_groups:
                group["lr"] = config.lr * _lr_factor(step, config.warmup_steps, used)
            query_condition, query_type, tokens = captions(batch_size)
            text_features = model.encode_text(tokens, normalize=True)
            targets = tone_targets(query_condition, query_type, image_condition, image_type, config.tone_spread)
            similarity = text_features @ features.T
            loss = _soft_cross_entropy(logit_scale * similarity, targets)
            if config.off_topic_weight:
                off = model.encode_text(tokenizer(off_topic_sentences(max(1, batch_size // 4), rng)).to(device), normalize=True)
                ceiling = similarity.max(dim=1).values.detach().median() - config.off_topic_margin
                off_best = (off @ features.T).max(dim=1).values
                loss = loss + config.off_topic_weight * torch.relu(off_best - ceiling).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step, done, total = step + 1, done + 1, total + loss.item()
        losses.append(total / max(1, done))
        logger.info("epoch %d text loss %.4f", epoch + 1, losses[-1])
        if step < total_steps and _budget_used(step, total_steps, config, started, cpu_started) >= 1.0:
            stopped_early = f"at step {step} of {total_steps} (epoch {epoch + 1} of {config.epochs}): the budget was spent"
            logger.warning("text tuning stopped early %s", stopped_early)
            break

    metadata = _run_metadata(
        samples, config, command=command, conditions=conditions, train_images=len(train_set), losses=losses,
        terms={"text": [round(x, 4) for x in losses]}, stopped_early=stopped_early, started=started, cpu_started=cpu_started,
    )
    metadata = save_checkpoint(model, out_path, metadata=metadata, half=config.save_half)
    return TrainResult(checkpoint=out_path, metadata=metadata)


def _is_frozen_in_text_tuning(name: str) -> bool:
    """The image tower and the temperature; everything else is the text tower."""
    return name.startswith("visual.") or name in ("logit_scale", "logit_bias")


def _embed_views(model, preprocess, train_set, config: TrainConfig, generator, *, progress: bool, chunk: int = 64):
    """(n, 1 + image_views, dim) normalised image vectors: the plain view as search computes it
    (the model's own preprocessing), then augmented views (search/clip_augment.py)."""
    import torch
    from PIL import Image as PILImage
    from PIL import ImageOps
    from tqdm import tqdm

    size, mean, std = _input_size(preprocess), *_normalisation(preprocess)
    wide = round(size * config.load_scale)
    out = []
    for start in tqdm(range(0, len(train_set), chunk), desc="embedding training images", unit="batch", disable=not progress):
        images = [s.load().convert("RGB") for s in train_set[start : start + chunk]]
        plain = torch.stack([preprocess(im) for im in images])
        pixels = torch.from_numpy(
            np.stack([np.asarray(ImageOps.fit(im, (wide, wide), PILImage.Resampling.BICUBIC)) for im in images])
        ).permute(0, 3, 1, 2).contiguous()
        batches = [plain] + [(augment(pixels, size, generator, config.augment) - mean) / std for _ in range(config.image_views)]
        with torch.no_grad():
            vectors = [model.encode_image(b.to(config.device), normalize=True) for b in batches]
        out.append(torch.stack(vectors, dim=1))
    return torch.cat(out)


def _training_split(samples: Sequence[Sample], config: TrainConfig, rng: random.Random) -> list[Sample]:
    train_set = [s for s in samples if not is_heldout(s.key, config.holdout_fraction)]
    if config.max_images and len(train_set) > config.max_images:
        train_set = rng.sample(train_set, config.max_images)
    if len(train_set) < 2:
        raise ValueError(f"need at least 2 training images, found {len(train_set)} (held out: {config.holdout_fraction:.0%})")
    return train_set


def _budget_used(step: int, total_steps: int, config: TrainConfig, started: float, cpu_started: float) -> float:
    """Share of the run done: by steps, or by CPU or wall time when a budget says so."""
    shares = [step / total_steps]
    if config.cpu_budget_seconds:
        shares.append((time.process_time() - cpu_started) / config.cpu_budget_seconds)
    if config.wall_budget_seconds:
        shares.append((time.monotonic() - started) / config.wall_budget_seconds)
    return max(shares)


def _run_metadata(samples, config: TrainConfig, *, command, conditions, train_images, losses, terms, stopped_early, started, cpu_started) -> dict:
    return {
        "model_name": config.model_name,
        "config": asdict(config),
        "command": command,
        "data_fingerprint": data_fingerprint(samples),
        "code_version": code_version(),
        "init": _describe_init(config.init),
        "conditions": conditions,
        "train_images": train_images,
        "heldout_images": sum(is_heldout(s.key, config.holdout_fraction) for s in samples),
        "epoch_losses": [round(x, 4) for x in losses],
        "epoch_loss_terms": terms,
        "stopped_early": stopped_early,
        "seconds": round(time.monotonic() - started, 1),
        # CPU seconds over all threads: on a shared machine wall time says little; on two free
        # cores the wall time is about cpu_seconds / threads.
        "cpu_seconds": round(time.process_time() - cpu_started, 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _describe_init(init: str) -> dict | None:
    if not init:
        return None
    from search.encoder import file_sha256

    return {"path": str(init), "sha256": file_sha256(init)}


def _input_size(preprocess) -> int:
    """The square input side of the model's eval transform (its centre crop)."""
    for step in getattr(preprocess, "transforms", []):
        if type(step).__name__ == "CenterCrop":
            height, width = step.size if isinstance(step.size, (tuple, list)) else (step.size, step.size)
            if height != width:
                raise ValueError(f"non-square model input {height}x{width} is not supported")
            return int(height)
    raise ValueError("the model's preprocessing has no CenterCrop step")


def _normalisation(preprocess) -> tuple:
    import torch

    for step in getattr(preprocess, "transforms", []):
        if hasattr(step, "mean") and hasattr(step, "std"):
            return torch.tensor(step.mean).view(1, 3, 1, 1), torch.tensor(step.std).view(1, 3, 1, 1)
    raise ValueError("the model's preprocessing has no Normalize step")


def _param_groups(model, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        is_matrix = param.ndim >= 2 and "embedding" not in name and "token" not in name
        (decay if is_matrix else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _lr_factor(step: int, warmup: int, progress: float) -> float:
    """Linear warmup over `warmup` steps, times a cosine decay over the run's progress (0..1)."""
    return min(1.0, (step + 1) / max(1, warmup)) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


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
