"""DermGAN services: the Django side of the engine. Commands (and later tasks) call these.

The ML code (semantic_map, crops, networks, losses, train, sample, evaluate) knows nothing of
Django; these functions read the catalogue, pass plain data down, and record GanCheckpoint rows.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
from django.conf import settings
from django.db import transaction
from django.db.models import Count
from PIL import Image as PILImage

from atlas.demo.shipped import shipped_matches, sidecar_fingerprint_apply
from atlas.models import Condition, Image
from atlas.services.ingestion import stored_image_pixels
from generation import dataset as ds
from generation import evaluate as ev
from generation import sample as smp
from generation import train as tr
from generation.crops import roi_crop
from generation.errors import GanError
from generation.models import GanCheckpoint
from generation.semantic_map import SKIN_LEVELS, Box, MapError, MapSpec, centred_box, encode, with_skin_type

logger = logging.getLogger(__name__)


# --- dataset -----------------------------------------------------------------------------
@dataclass
class DatasetBuildResult:
    fingerprint: str
    path: Path
    n_images: int
    n_train: int
    n_eval: int
    skipped: dict[str, int] = field(default_factory=dict)
    reused: bool = False


def gan_root() -> Path:
    return Path(settings.GAN_ROOT)


def _apply_threads() -> None:
    """Honour GAN_THREADS for the heavy work of this process (training, encoder, sampling)."""
    if settings.GAN_THREADS:
        torch.set_num_threads(settings.GAN_THREADS)


def catalogue_vocabulary() -> list[str]:
    """Every catalogue condition, ordered by slug: the codes a new checkpoint will carry."""
    return list(Condition.objects.order_by("slug").values_list("slug", flat=True))


def _gan_sources() -> tuple[list[ds.SourceImage], dict[str, int]]:
    """Real images from sources that allow generative training, with a skin type and boxes."""
    usable = Image.objects.usable_for_generative_training().select_related("condition", "source").prefetch_related("regions")
    sources, skipped = [], {"no_skin_type": 0, "no_regions": 0}
    for image in usable.order_by("id"):
        if image.fitzpatrick_type is None:
            skipped["no_skin_type"] += 1
            continue
        boxes = tuple(Box(r.x, r.y, r.width, r.height) for r in image.regions.all())
        if not boxes:
            skipped["no_regions"] += 1
            continue
        sources.append(ds.SourceImage(
            key=image.sha256, group=image.case_id or image.sha256, condition=image.condition.slug,
            skin_type=image.fitzpatrick_type, boxes=boxes, load=partial(stored_image_pixels, image.file.name),
            identity=image.training_identity if image.is_procedural else "",
        ))
    return sources, skipped


def _dataset_params(
    window: int | None, crops_per_image: int | None, holdout_percent: int | None, seed: int, window_tries: int | None = None,
) -> dict:
    return {
        "window": window or settings.GAN_CROP_SIZE,
        "crops_per_image": crops_per_image or settings.GAN_CROPS_PER_IMAGE,
        "holdout_percent": settings.GAN_HOLDOUT_PERCENT if holdout_percent is None else holdout_percent,
        "seed": seed,
        "window_tries": window_tries or settings.GAN_WINDOW_TRIES,
    }


def gan_dataset_fingerprint(
    *, window: int | None = None, crops_per_image: int | None = None, holdout_percent: int | None = None, seed: int = 0,
    window_tries: int | None = None,
) -> str:
    """The fingerprint build_gan_dataset would give the catalogue now, without cutting crops."""
    sources, _ = _gan_sources()
    params = _dataset_params(window, crops_per_image, holdout_percent, seed, window_tries)
    return ds.fingerprint_of(sources, catalogue_vocabulary(), ds.dataset_params(**params))


def gan_dataset_build(
    *, window: int | None = None, crops_per_image: int | None = None, holdout_percent: int | None = None, seed: int = 0,
    window_tries: int | None = None,
) -> DatasetBuildResult:
    """Cut ROI crops of every eligible real image into GAN_ROOT/datasets/<fingerprint> and make it
    the current training set. The same catalogue and parameters give the same fingerprint, and
    then the existing set is reused."""
    params = _dataset_params(window, crops_per_image, holdout_percent, seed, window_tries)
    sources, skipped = _gan_sources()
    if not sources:
        raise GanError(
            "no real images with a Fitzpatrick type and ROI boxes from sources that allow generative "
            f"training (skipped: {skipped}); import or seed some first"
        )
    vocabulary = catalogue_vocabulary()
    fingerprint = ds.fingerprint_of(sources, vocabulary, ds.dataset_params(**params))
    out_dir = gan_root() / "datasets" / fingerprint[:16]
    reused = (out_dir / "manifest.json").exists() and ds.manifest_load(out_dir).fingerprint == fingerprint
    try:
        manifest = ds.manifest_load(out_dir) if reused else ds.dataset_write(sources, out_dir=out_dir, vocabulary=vocabulary, **params)
    except MapError as exc:
        raise GanError(f"a catalogue image has an unusable box: {exc}") from exc
    current = {"fingerprint": fingerprint, "path": str(out_dir.relative_to(gan_root()))}
    (gan_root() / "datasets" / "current.json").write_text(json.dumps(current))
    return DatasetBuildResult(fingerprint, out_dir, len(sources), len(manifest.split("train")), len(manifest.split("eval")), skipped, reused)


def gan_dataset_current() -> ds.Manifest:
    pointer = gan_root() / "datasets" / "current.json"
    if not pointer.exists():
        raise GanError("no GAN training set yet: run `python manage.py build_gan_dataset` first")
    return ds.manifest_load(gan_root() / json.loads(pointer.read_text())["path"])


# --- training ----------------------------------------------------------------------------
def _stored_path(path: Path) -> str:
    try:
        return str(Path(path).relative_to(gan_root()))
    except ValueError:
        return str(path)


def checkpoint_file(checkpoint: GanCheckpoint) -> Path:
    return checkpoint.file


def gan_train(
    *,
    preset: str,
    steps: int | None = None,
    resume: bool = False,
    run: str | None = None,
    overrides: dict | None = None,
    activate: bool = True,
    progress: bool = True,
) -> list[GanCheckpoint]:
    """Train (or resume) a run on the current training set; one GanCheckpoint row per checkpoint.
    The last checkpoint becomes the active one unless activate=False."""
    manifest = gan_dataset_current()
    try:
        cfg = tr.preset(preset, **{"device": settings.GAN_DEVICE, "threads": settings.GAN_THREADS,
                                   "crop_window": manifest.window, **(overrides or {})})
    except TypeError as exc:
        raise GanError(f"unknown training setting: {exc}") from exc
    if steps is not None:
        cfg = dataclasses.replace(cfg, steps=steps)
    run = run or f"{preset}-{manifest.fingerprint[:8]}"
    out_dir = gan_root() / "runs" / run
    if not resume and (out_dir / "resume.pt").exists():
        raise GanError(f"run {run!r} already exists at {out_dir}: pass --resume to continue it, or remove it")
    pairs = ds.PairSet(manifest, split="train", size=cfg.image_size)
    if len(pairs) == 0:
        raise GanError("the training split is empty")
    preview = ds.PairSet(manifest, split="eval", size=cfg.image_size).spread(8) if manifest.split("eval") else None
    rows: list[GanCheckpoint] = []

    description = gan_training_data_describe(image_keys=[item["image"] for item in manifest.items])

    def record(path: Path, metrics: dict) -> None:
        meta = smp.checkpoint_read(path)
        rows.append(GanCheckpoint.objects.update_or_create(
            path=_stored_path(path),
            defaults={"run": run, "preset": preset, "step": meta["step"], "metrics": {"losses": metrics},
                      "data_fingerprint": meta["data_fingerprint"], "code_version": meta["code_version"],
                      "data_description": description, **checkpoint_planning_facts(meta)},
        )[0])

    try:
        tr.train(cfg, pairs=pairs, vocabulary=list(manifest.vocabulary), data_fingerprint=manifest.fingerprint,
                 out_dir=out_dir, resume=resume, preview=preview, progress=progress, on_checkpoint=record)
    except ValueError as exc:
        raise GanError(str(exc)) from exc
    if activate and rows:
        gan_checkpoint_activate(checkpoint=rows[-1])
    return rows


def gan_checkpoint_activate(*, checkpoint: GanCheckpoint) -> GanCheckpoint:
    """Make this checkpoint the one used for sampling, after checking it loads against the catalogue."""
    smp.generator_load(checkpoint_file(checkpoint), catalogue=catalogue_vocabulary(), device="cpu")
    with transaction.atomic():
        GanCheckpoint.objects.filter(is_active=True).exclude(pk=checkpoint.pk).update(is_active=False)
        GanCheckpoint.objects.filter(pk=checkpoint.pk).update(is_active=True)
    checkpoint.is_active = True
    return checkpoint


# --- sampling ----------------------------------------------------------------------------
# Loaded generators, most recently used last. Bounded (GAN_GENERATOR_CACHE_SIZE, default 2:
# the active checkpoint and the one before it): a worker that meets many checkpoint versions
# never holds them all, GPU memory included. A rewritten file replaces its older version.
_cache: OrderedDict[tuple[str, int], smp.LoadedGenerator] = OrderedDict()
_cache_lock = threading.Lock()


def gan_generator_load(*, checkpoint: GanCheckpoint | Path | None = None) -> smp.LoadedGenerator:
    """The active (or given) checkpoint's generator, loaded once per process and file version."""
    if checkpoint is None:
        checkpoint = GanCheckpoint.objects.filter(is_active=True).first()
        if checkpoint is None:
            raise GanError("no active GAN checkpoint: run `python manage.py train_gan --preset fast` first")
    path = checkpoint_file(checkpoint) if isinstance(checkpoint, GanCheckpoint) else Path(checkpoint)
    if not path.exists():
        raise GanError(f"checkpoint file missing: {path}")
    key = (str(path), path.stat().st_mtime_ns)
    _apply_threads()
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        _evict([k for k in _cache if k[0] == key[0]])  # older versions of this file
        _evict(list(_cache)[: max(0, len(_cache) - settings.GAN_GENERATOR_CACHE_SIZE + 1)])  # room for one
        try:
            _cache[key] = smp.generator_load(path, catalogue=catalogue_vocabulary(), device=settings.GAN_DEVICE)
        except smp.CheckpointError as exc:
            raise GanError(str(exc)) from exc
        sidecar_fingerprint_apply(_cache[key].meta, path)
        return _cache[key]


def _evict(keys: list[tuple[str, int]]) -> None:
    """Drop these generators; their GPU memory goes back once nothing else holds them."""
    for key in keys:
        del _cache[key]
    if keys and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _check_condition(slug: str) -> None:
    if not Condition.objects.filter(slug=slug).exists():
        raise GanError(f"unknown condition {slug!r}: not in the catalogue")


def images_generate(
    *,
    condition: str,
    skin_type: int,
    size: float = 0.4,
    location: tuple[float, float] = (0.5, 0.5),
    count: int = 1,
    seed: int = 0,
    checkpoint: GanCheckpoint | Path | None = None,
) -> list[PILImage.Image]:
    """`count` images of `condition` on Fitzpatrick `skin_type`, one square lesion box of side
    `size` (fraction of the image) centred at `location`. Seeded: same arguments, same images."""
    _check_condition(condition)
    if not 1 <= count <= 1000:
        raise GanError(f"count must be 1-1000, got {count}")
    gen = gan_generator_load(checkpoint=checkpoint)
    try:
        semantic_map = smp.spec_map(gen, condition=condition, skin_type=skin_type, size=size, centre=location)
    except MapError as exc:
        raise GanError(str(exc)) from exc
    return smp.generate(gen, [semantic_map] * count, seed=seed)


def images_generate_from_map(*, semantic_map: np.ndarray, seed: int = 0, checkpoint: GanCheckpoint | Path | None = None):
    """Images from an (edited) real map, e.g. a training map with its R channel changed."""
    gen = gan_generator_load(checkpoint=checkpoint)
    try:
        smp.decode_check(semantic_map, gen)
    except MapError as exc:
        raise GanError(str(exc)) from exc
    return smp.generate(gen, [semantic_map], seed=seed)


SWEEP_SIZES = (0.1, 0.2, 0.3, 0.4, 0.55, 0.7)


def _current_manifest_or_none() -> ds.Manifest | None:
    try:
        return gan_dataset_current()
    except GanError:
        return None


def image_window_pair(image: Image, *, window: int, size: int, vocabulary) -> tuple[np.ndarray, np.ndarray]:
    """(real crop, its map) of one catalogue image with regions: an ROI window as training cuts
    them (seeded by the image's id, so always the same one), at `size` pixels."""
    boxes = tuple(Box(r.x, r.y, r.width, r.height) for r in image.regions.all())
    crop = roi_crop(stored_image_pixels(image.file.name), boxes, window=window, rng=random.Random(image.pk))
    item = {"condition": image.condition.slug, "skin_type": image.fitzpatrick_type,
            "boxes": [[b.x, b.y, b.width, b.height] for b in crop.boxes]}
    return ds.render_pair(crop.image, item, size=size, vocabulary=vocabulary)


def _catalogue_example(slug: str, gen: smp.LoadedGenerator) -> tuple[np.ndarray, np.ndarray] | None:
    """(real crop, its map) from the first real catalogue image of `slug` with regions, in the
    checkpoint's ROI window: what a sweep shows when no training set has been built."""
    image = (Image.objects.filter(condition__slug=slug, origin=Image.Origin.REAL, regions__isnull=False)
             .exclude(fitzpatrick_type=None).order_by("id").prefetch_related("regions").select_related("condition").first())
    if image is None:
        return None
    window = int(gen.meta["config"].get("crop_window") or gen.image_size)
    return image_window_pair(image, window=window, size=gen.image_size, vocabulary=gen.vocabulary)


def _sweep_rows(kind: str, gen: smp.LoadedGenerator, conditions: Sequence[str], seed: int):
    """(label, [images]) per condition: real crop, its map, then the sweep (FIG 6 / FIG 7).
    The real example comes from the training set when one is built, else from the catalogue."""
    manifest = _current_manifest_or_none()
    items = manifest.split("eval") + manifest.split("train") if manifest else []
    rows = []
    for slug in conditions:
        item = next((i for i in items if i["condition"] == slug), None)
        example = None
        if item is not None:
            with PILImage.open(manifest.root / item["file"]) as im:
                example = ds.render_pair(im, item, size=gen.image_size, vocabulary=gen.vocabulary)
        elif manifest is None:
            example = _catalogue_example(slug, gen)
        if example is not None:
            real, base = example
        else:  # no real example: a synthetic map on type III
            real, base = None, smp.spec_map(gen, condition=slug, skin_type=3)
        if kind == "skin-type":
            maps = [with_skin_type(base, t) for t in sorted(SKIN_LEVELS)]
        else:
            skin = next(t for t, level in SKIN_LEVELS.items() if level == int(base[0, 0, 0]))
            n = gen.image_size
            maps = [encode(MapSpec(slug, skin, (centred_box(size=s, width=n, height=n),)), width=n, height=n,
                           vocabulary=gen.vocabulary) for s in SWEEP_SIZES]
        images = smp.generate(gen, maps, seed=seed, stochastic=False, shared_noise=True)
        head = [PILImage.fromarray(real) if real is not None else PILImage.new("RGB", images[0].size, "white"),
                PILImage.fromarray(base)]
        rows.append(head + images)
    return rows


def gan_sweep(
    *, kind: str, out: Path, conditions: Sequence[str] = (), seed: int = 0, scale: int = 2,
    checkpoint: GanCheckpoint | Path | None = None,
) -> Path:
    """A PNG grid: one row per condition = [real crop | its map | six skin types (FIG 6) or six
    lesion sizes (FIG 7)]. Default conditions: those in the training set, up to eight."""
    if kind not in ("skin-type", "size"):
        raise GanError(f"unknown sweep {kind!r}: use skin-type or size")
    gen = gan_generator_load(checkpoint=checkpoint)
    for slug in conditions:
        _check_condition(slug)
        if slug not in gen.vocabulary:
            raise GanError(f"the checkpoint was not trained with condition {slug!r}")
    if not conditions:
        manifest = _current_manifest_or_none()
        if manifest is not None:
            present = sorted({i["condition"] for i in manifest.items})
        else:
            present = sorted(set(gen.vocabulary) & set(
                Image.objects.filter(origin=Image.Origin.REAL, regions__isnull=False)
                .values_list("condition__slug", flat=True)))
        conditions = present[:8]
    sheet = smp.grid(_sweep_rows(kind, gen, conditions, seed))
    if scale > 1:
        sheet = sheet.resize((sheet.width * scale, sheet.height * scale), PILImage.Resampling.NEAREST)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    (out.with_suffix(".json")).write_text(json.dumps({
        "kind": kind, "rows": list(conditions), "columns": ["real", "map"]
        + ([f"type {t}" for t in sorted(SKIN_LEVELS)] if kind == "skin-type" else [f"size {s}" for s in SWEEP_SIZES]),
        "checkpoint": gen.name, "seed": seed,
    }, indent=1))
    return out


# --- evaluation --------------------------------------------------------------------------
def gan_extractor(*, manifest: ds.Manifest, inception_weights: str = "") -> ev.FeatureExtractor:
    """Inception-V3 pool3 when a weights file is given (argument or setting), else our own
    crop encoder trained on the training split (cached per training-set fingerprint)."""
    weights = inception_weights or settings.GAN_INCEPTION_WEIGHTS
    _apply_threads()
    if weights:
        return ev.InceptionPool3(Path(weights))
    path = gan_root() / "encoders" / f"crop-encoder-{manifest.fingerprint[:16]}.pt"
    if path.exists():
        return ev.CropEncoder.load(path)
    pairs = ds.PairSet(manifest, split="train", size=64)
    index = {slug: i for i, slug in enumerate(manifest.vocabulary)}
    conditions = torch.tensor([index[i["condition"]] for i in pairs.items])
    skin = torch.tensor([i["skin_type"] for i in pairs.items])
    encoder = ev.crop_encoder_train(pairs.images, conditions, skin, n_conditions=len(index),
                                    name=f"atlas-crop-encoder[{manifest.fingerprint[:8]}]")
    path.parent.mkdir(parents=True, exist_ok=True)
    encoder.save(path)
    return encoder


def _eval_pairs(manifest: ds.Manifest, size: int) -> tuple[ds.PairSet, ds.PairSet]:
    real = ds.PairSet(manifest, split="eval", size=size)
    if len(real) < 10:
        raise GanError(f"only {len(real)} held-out crops: too few to score (raise ATLAS_GAN_HOLDOUT_PERCENT)")
    return real, ds.PairSet(manifest, split="train", size=size)


def gan_evaluate(
    *, checkpoint: GanCheckpoint | Path | None = None, trials: int = 3, inception_weights: str = ""
) -> dict:
    """FD and KID of generated vs held-out real crops (one image per held-out map, `trials`
    seeds), with the extractor named. Stored in the checkpoint row's metrics when given a row."""
    manifest = gan_dataset_current()
    gen = gan_generator_load(checkpoint=checkpoint)
    extractor = gan_extractor(manifest=manifest, inception_weights=inception_weights)
    real, _ = _eval_pairs(manifest, gen.image_size)
    result = _score_generator(gen, real, extractor, trials)
    if isinstance(checkpoint, GanCheckpoint) or checkpoint is None:
        row = checkpoint or GanCheckpoint.objects.get(is_active=True)
        row.metrics = {**row.metrics, "evaluation": result}
        row.save(update_fields=["metrics"])
    return result


def _score_generator(gen: smp.LoadedGenerator, real: ds.PairSet, extractor, trials: int) -> dict:
    maps = [m.permute(1, 2, 0).numpy() for m in real.maps]
    scores = []
    for seed in range(trials):
        fake = torch.stack([torch.from_numpy(np.array(i)).permute(2, 0, 1) for i in smp.generate(gen, maps, seed=seed)])
        scores.append(ev.score(real.images, fake, extractor))
    return _summary(scores)


def _summary(scores: list[ev.Score]) -> dict:
    fds, kids = [s.fd for s in scores], [s.kid_mean for s in scores]
    return {"extractor": scores[0].extractor, "n": scores[0].n_real, "trials": len(scores),
            "fd": float(np.mean(fds)), "fd_ci": ev.bootstrap_interval(fds),
            "kid": float(np.mean(kids)), "kid_ci": ev.bootstrap_interval(kids)}


ABLATION_VARIANTS: dict[str, dict] = {
    "DermGAN (full)": {},
    "no checkerboard fix (transposed convs)": {"upsample": "transposed"},
    "sub-pixel upsampling (ICNR)": {"upsample": "subpixel"},
    "no condition-specific (ROI) loss": {"lambda_roi": 0.0},
    "no feature matching loss": {"lambda_fm": 0.0},
}
PATENT_TABLE_1 = {
    "real data": "83.6 ± 2.5",
    "DermGAN (full)": "122.4 ± 3.4",
    "no checkerboard fix (transposed convs)": "151.6 ± 3.4",
    "no condition-specific (ROI) loss": "174.0 ± 4.7",
    "no feature matching loss": "140.7 ± 2.5",
}


def gan_ablation(
    *, preset: str = "fast", steps: int = 1500, trials: int = 3, inception_weights: str = "", progress: bool = True
) -> list[dict]:
    """Train each variant on the same budget and data, score each on the held-out crops, and
    score real training crops against the same held-out crops as the reference row."""
    manifest = gan_dataset_current()
    size = tr.preset(preset).image_size
    extractor = gan_extractor(manifest=manifest, inception_weights=inception_weights)
    real, train_pairs = _eval_pairs(manifest, size)
    rows = []
    ref = [ev.score(real.images, train_pairs.images[torch.randperm(len(train_pairs), generator=torch.Generator().manual_seed(t))[: len(real)]], extractor)
           for t in range(trials)]
    rows.append({"variant": "real data", **_summary(ref), "patent_fid": PATENT_TABLE_1["real data"]})
    for name, overrides in ABLATION_VARIANTS.items():
        run = f"ablation-{preset}-{steps}-{overrides_slug(overrides)}-{manifest.fingerprint[:8]}"
        ckpts = GanCheckpoint.objects.filter(run=run, step=steps)
        if not ckpts.exists():
            if (gan_root() / "runs" / run / "resume.pt").exists():
                gan_train(preset=preset, steps=steps, run=run, overrides=overrides, activate=False, progress=progress, resume=True)
            else:
                gan_train(preset=preset, steps=steps, run=run, overrides=overrides, activate=False, progress=progress)
        gen = gan_generator_load(checkpoint=GanCheckpoint.objects.get(run=run, step=steps))
        rows.append({"variant": name, **_score_generator(gen, real, extractor, trials), "patent_fid": PATENT_TABLE_1[name]})
    return rows


def overrides_slug(overrides: dict) -> str:
    return "-".join(f"{k}={v}" for k, v in sorted(overrides.items())).replace(".", "p") or "full"


# --- shipping ----------------------------------------------------------------------------
def gan_checkpoint_export(
    *, out: Path, checkpoint: GanCheckpoint | None = None, command: str = "", recalibrate_batches: int = 0,
) -> Path:
    """A small fp16 sampling-only copy of a checkpoint (default: the active one), with a JSON
    beside it recording the command that trained it, its data fingerprint and code version.
    `recalibrate_batches` > 0 first averages the BatchNorm statistics over that many batches
    of the checkpoint's own training set (`train.recalibrate_batchnorm`)."""
    checkpoint = checkpoint or GanCheckpoint.objects.filter(is_active=True).first()
    if checkpoint is None:
        raise GanError("no active GAN checkpoint to export")
    source = checkpoint_file(checkpoint)
    extra = {"command": command}
    try:
        if recalibrate_batches:
            source = _recalibrated_copy(source, Path(out).with_name(f".{Path(out).stem}-recalibrated.pt"), recalibrate_batches)
            extra |= {"from": checkpoint_file(checkpoint).name, "batchnorm_recalibrated_batches": recalibrate_batches}
        path = smp.generator_export(source, Path(out), extra=extra)
    except smp.CheckpointError as exc:
        raise GanError(str(exc)) from exc
    finally:
        if source != checkpoint_file(checkpoint):
            source.unlink(missing_ok=True)
    meta = smp.checkpoint_read(path)
    Path(out).with_suffix(".json").write_text(json.dumps({
        "file": Path(out).name, "bytes": Path(out).stat().st_size, "command": command,
        "run": checkpoint.run, "preset": checkpoint.preset, "step": meta["step"],
        "data_fingerprint": meta["data_fingerprint"], "code_version": meta["code_version"],
        "metrics": checkpoint.metrics, "config": meta["config"],
    }, indent=1))
    return path


def _recalibrated_copy(src: Path, dst: Path, batches: int) -> Path:
    state = smp.checkpoint_read(src)
    manifest = gan_dataset_current()
    if manifest.fingerprint != state["data_fingerprint"]:
        raise GanError("cannot recalibrate: the current GAN training set is not the one this checkpoint was trained on; "
                       "run build_gan_dataset with the parameters its JSON records")
    cfg_fields = {f.name for f in dataclasses.fields(tr.TrainConfig)}
    cfg = tr.TrainConfig(**{k: v for k, v in state["config"].items() if k in cfg_fields})
    gen = smp.generator_load(src, device="cpu")
    pairs = ds.PairSet(manifest, split="train", size=cfg.image_size, vocabulary=list(gen.vocabulary))
    tr.recalibrate_batchnorm(gen.net, pairs, cfg, batches=batches)
    state["generator"]["state"] = {k: v.clone() for k, v in gen.net.state_dict().items()}
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, dst)
    return dst


def gan_checkpoint_register(*, path: Path, activate: bool = False, data_description: dict | None = None) -> GanCheckpoint:
    """A GanCheckpoint row for a checkpoint file made elsewhere (e.g. one shipped in the repo),
    checked against the catalogue first. What it was trained on comes from the file when it
    says, else from the training set with its fingerprint when that is on disk, else from
    `data_description` (the caller knows, e.g. the demo atlas whose fingerprint matched)."""
    try:
        gen = smp.generator_load(Path(path), catalogue=catalogue_vocabulary(), device="cpu")
    except smp.CheckpointError as exc:
        raise GanError(str(exc)) from exc
    fingerprint = sidecar_fingerprint_apply(gen.meta, Path(path))["data_fingerprint"]
    description = gen.meta.get("data_description") or _described_training_set(fingerprint) or data_description or {}
    row, _ = GanCheckpoint.objects.update_or_create(
        path=_stored_path(Path(path).resolve()),
        defaults={"run": Path(path).parent.name, "preset": gen.meta["config"].get("preset", ""),
                  "step": gen.meta["step"], "data_fingerprint": fingerprint,
                  "code_version": gen.meta["code_version"], "data_description": description,
                  **checkpoint_planning_facts(gen.meta)},
    )
    return gan_checkpoint_activate(checkpoint=row) if activate else row


def checkpoint_planning_facts(meta: dict) -> dict:
    """The GanCheckpoint fields planning reads (vocabulary, image size, crop window) from a
    checkpoint's contents."""
    return {"vocabulary": list(meta["vocabulary"]), "image_size": int(meta["image_size"]),
            "crop_window": int(meta["config"].get("crop_window") or 0) or None}


def gan_training_data_describe(*, image_keys: Sequence[str]) -> dict:
    """What a training set was made of, from its images' sources: each source's name, image
    count and whether it is procedural (code-made demo data) or clinical, and a one-line
    summary a teacher can pass on. Never a file path."""
    rows = (
        Image.objects.filter(sha256__in=set(image_keys)).order_by()
        .values("source__slug", "source__name", "source__is_procedural").annotate(n=Count("id"))
        .order_by("source__slug")
    )
    sources = [{"slug": r["source__slug"], "name": r["source__name"], "images": r["n"],
                "procedural": r["source__is_procedural"]} for r in rows]
    procedural = [s["name"] for s in sources if s["procedural"]]
    clinical = [s["name"] for s in sources if not s["procedural"]]
    total = sum(s["images"] for s in sources)
    parts = []
    if procedural:
        parts.append(f"procedural, non-clinical images made by code ({', '.join(procedural)}), not photographs of patients")
    if clinical:
        parts.append(f"clinical photographs from {', '.join(clinical)}")
    summary = f"{total} training image{'s' if total != 1 else ''}: " + "; and ".join(parts) if parts else "not recorded"
    return {"summary": summary, "procedural": bool(procedural) and not clinical, "images": total, "sources": sources}


def _described_training_set(fingerprint: str) -> dict | None:
    try:
        manifest = ds.manifest_load(gan_root() / "datasets" / fingerprint[:16])
    except ValueError:
        return None
    if manifest.fingerprint != fingerprint:
        return None
    return gan_training_data_describe(image_keys=[item["image"] for item in manifest.items])


# --- the demo checkpoint shipped in the repository -----------------------------------------

DEMO_CHECKPOINT = settings.BASE_DIR / "generation" / "demo_model" / "dermgan-demo.pt"
# How the shipped checkpoint's training set was cut (its JSON records the whole command).
DEMO_DATASET = {"window": 128, "crops_per_image": 2, "window_tries": 4}


def demo_checkpoint_ensure(*, train_if_stale: bool = True) -> str:
    """Make sure an active GAN checkpoint exists, without training when we can avoid it.

    The repository ships the demo-preset generator (128 px) that train_gan made on the default
    demo atlas (generation/demo_model/, with the command and data fingerprint beside it). When
    the catalogue's training-set fingerprint matches, that file is registered and activated;
    when it does not, the fast preset is trained here instead (minutes on two cores; the demo
    preset takes about an hour).
    """
    active = GanCheckpoint.objects.filter(is_active=True).first()
    if active is not None and checkpoint_file(active).exists():
        return f"GAN: checkpoint {active.pk} active"
    catalogue = gan_dataset_fingerprint(**DEMO_DATASET)
    if shipped_matches(DEMO_CHECKPOINT, catalogue):
        # The fingerprints match: the shipped model was trained on this catalogue's training images.
        keys = [source.key for source in _gan_sources()[0]]
        row = gan_checkpoint_register(path=DEMO_CHECKPOINT, activate=True,
                                      data_description=gan_training_data_describe(image_keys=keys))
        return f"GAN: registered the shipped demo checkpoint {row.pk} (data fingerprint {catalogue[:16]} matches)"
    if not train_if_stale:
        return f"GAN: no checkpoint for this catalogue (fingerprint {catalogue[:16]}); run build_gan_dataset and train_gan"
    logger.warning("no shipped GAN checkpoint fits this catalogue (fingerprint %s): training one (minutes)", catalogue[:16])
    gan_dataset_build(**DEMO_DATASET)
    gan_train(preset="fast", progress=False)
    return "GAN: trained with train_gan --preset fast"
