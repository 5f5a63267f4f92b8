"""Django side of the classifier augmentation study: read the catalogue, call the Django-free
code (augmentation, stats, report), write the report. The command calls
`augmentation_experiment_run`."""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from atlas.models import Image
from atlas.services.ingestion import stored_image_pixels
from atlas.skin import roman
from generation.experiments import augmentation as aug
from generation.experiments import report, stats
from generation.experiments.augmentation import ExperimentError

def _describe_data(real: list[Image]) -> str:
    sources = Counter(image.source.name for image in real)
    return f"{len(real)} public real images from " + ", ".join(f"{name} ({n})" for name, n in sources.most_common())


@dataclass
class SyntheticPick:
    images: list[Callable[[], PILImage.Image]]
    labels: list[str]
    skin_types: list[int | None]
    keys: list[str]
    how: str
    notes: list[str]
    per_condition: Counter


def _catalogue_synthetic(test_ids: set[str]) -> SyntheticPick:
    """Synthetic catalogue images, minus those whose map borrowed a test-split image's layout."""
    rows = Image.objects.public().synthetic().select_related("condition").order_by("id")
    pick = SyntheticPick([], [], [], [], "", [], Counter())
    dropped, unknown, checkpoints = 0, 0, Counter()
    for image in rows:
        source = ((image.provenance or {}).get("map") or {}).get("source_image")
        if source in test_ids:
            dropped += 1
            continue
        unknown += "map" not in (image.provenance or {})
        checkpoints[(image.provenance or {}).get("checkpoint", "unknown")] += 1
        pick.images.append(partial(stored_image_pixels, image.file.name))
        pick.labels.append(image.condition.slug)
        pick.skin_types.append(image.fitzpatrick_type)
        pick.keys.append(str(image.public_id))
        pick.per_condition[image.condition.slug] += 1
    pick.how = "synthetic images in the catalogue (gap filling), checkpoints: " + (
        ", ".join(f"{c} ({n})" for c, n in checkpoints.most_common()) or "none")
    pick.notes.append(f"{dropped} catalogue synthetic images were left out because their semantic map borrowed the "
                      "lesion layout of a test-split image.")
    if unknown:
        pick.notes.append(f"{unknown} synthetic images carry no map provenance: whether they were conditioned on "
                          "test-split images cannot be checked.")
    return pick


def _generated_synthetic(n: int, train_real: list[Image], *, seed: int, checkpoint=None) -> SyntheticPick:
    """`n` fresh images from the active checkpoint, conditioned on TRAIN-split layouts only,
    spread evenly over the conditions the checkpoint knows and the six skin types. Kept in
    memory, never stored in the catalogue."""
    from generation.gap_maps import RealLayout, gap_map, stable_seed
    from generation.gaps import crop_window
    from generation.sample import generate
    from generation.semantic_map import Box as MapBox
    from generation.services import GanError, gan_generator_load

    try:
        gen = gan_generator_load(checkpoint=checkpoint)
    except GanError as exc:
        raise ExperimentError(str(exc)) from exc
    layouts: dict[str, list[RealLayout]] = {}
    for image in train_real:
        boxes = tuple(MapBox(r.x, r.y, r.width, r.height) for r in image.regions.all())
        if boxes and image.source.allows_generative_training:
            layouts.setdefault(image.condition.slug, []).append(RealLayout(str(image.public_id), image.width, image.height, boxes))
    conditions = sorted(slug for slug in gen.vocabulary if slug in layouts)
    if not conditions:
        raise ExperimentError("no training-split image has ROI boxes for a condition the checkpoint knows")
    maps, labels, skins = [], [], []
    for k in range(n):
        slug, skin = conditions[k % len(conditions)], 1 + (k // len(conditions)) % 6
        m = gap_map(condition=slug, skin_type=skin, layouts=layouts[slug], vocabulary=gen.vocabulary, size=gen.image_size,
                    window=crop_window(gen), vary_size=True, seed=stable_seed("augmentation", seed, k))
        maps.append(m.semantic_map)
        labels.append(slug)
        skins.append(skin)
    images = generate(gen, [m for m in maps], seed=seed)
    pick = SyntheticPick([(lambda im=im: im) for im in images], labels, skins, [f"generated-{k}" for k in range(n)],
                         f"generated for this run with {gen.name} (data fingerprint "
                         f"{gen.meta.get('data_fingerprint', '')[:12]}), maps from training-split layouts only",
                         [], Counter(labels))
    return pick


def augmentation_experiment_run(
    *,
    out: Path,
    preset: str = "fast",
    generate: int = 0,
    overrides: dict | None = None,
    command: str = "python manage.py augmentation_experiment",
    progress: Callable[[str], None] | None = None,
    checkpoint=None,
) -> Path:
    """Train baseline and augmented classifiers, score both on the real test split, write
    out/report.md, out/results.json and the plots. Returns the report's path."""
    cfg = aug.preset(preset, **(overrides or {}))
    if cfg.weights:
        aug.classifier_build(2, weights=cfg.weights)  # refuse a bad file before minutes of loading
    say = progress or (lambda line: None)
    started = time.perf_counter()
    real = list(Image.objects.public().real().select_related("condition", "source").prefetch_related("regions").order_by("id"))
    if not real:
        raise ExperimentError("no real images in the catalogue: run `python manage.py seed_demo` or import a dataset")
    items = [aug.Item(str(i.public_id), i.condition.slug, i.case_id or f"image:{i.sha256}", i.fitzpatrick_type) for i in real]
    train_idx, test_idx = aug.case_split(items, test_fraction=cfg.test_fraction, seed=cfg.seed)
    test_ids = {items[i].key for i in test_idx}
    if generate:
        synth = _generated_synthetic(generate, [real[i] for i in train_idx], seed=cfg.seed, checkpoint=checkpoint)
    else:
        synth = _catalogue_synthetic(test_ids)
    slugs = sorted({it.label for it in items} | set(synth.labels))
    index = {slug: k for k, slug in enumerate(slugs)}
    say(f"loading {len(train_idx)} train, {len(test_idx)} test, {len(synth.labels)} synthetic images at {cfg.image_size} px")

    def real_set(idx: list[int]) -> aug.ImageSet:
        return aug.image_set([partial(stored_image_pixels, real[i].file.name) for i in idx], [index[items[i].label] for i in idx],
                             size=cfg.image_size, skin_types=[items[i].skin_type for i in idx], keys=[items[i].key for i in idx])

    train, test = real_set(train_idx), real_set(test_idx)
    synthetic = aug.image_set(synth.images, [index[s] for s in synth.labels], size=cfg.image_size,
                              skin_types=synth.skin_types, keys=synth.keys)
    say(f"training baseline and augmented arms ({aug.steps_for(cfg, len(train))} steps each"
        f"{', in parallel' if cfg.parallel else ''})")
    baseline, augmented = aug.study_run(cfg, train=train, synthetic=synthetic, test=test, n_classes=len(slugs), progress=say)
    result = _assemble(cfg, real, items, train_idx, test_idx, synth, slugs, test, baseline, augmented, command)
    result["seconds_total"] = time.perf_counter() - started
    return _write(Path(out), result, slugs, test, baseline, augmented)


def _assemble(cfg, real, items, train_idx, test_idx, synth, slugs, test, baseline, augmented, command) -> dict:
    y = test.labels.numpy()
    n = len(slugs)

    def arm(a: aug.ArmResult) -> dict:
        top1 = stats.bootstrap_ci(y, a.predictions, stats.accuracy, n_boot=cfg.n_boot, seed=cfg.seed)
        return {"top1": [stats.accuracy(y, a.predictions), float(top1[0]), float(top1[1])],
                "macro_f1": float(stats.f1_per_class(y, a.predictions, n)[np.bincount(y, minlength=n) > 0].mean()),
                "n_train": a.n_train, "seconds": a.log.seconds, "losses": a.log.losses}

    f1 = {}
    for a in (baseline, augmented):
        lo, hi = stats.bootstrap_ci(y, a.predictions, lambda t, p: stats.f1_per_class(t, p, n), n_boot=cfg.n_boot, seed=cfg.seed)
        f1[a.name] = (stats.f1_per_class(y, a.predictions, n), lo, hi)
    counts = np.bincount(y, minlength=n)
    classes = [{"slug": s, "test": int(counts[k]), "synthetic": synth.per_condition.get(s, 0),
                "baseline": [float(f1["baseline"][j][k]) for j in range(3)],
                "augmented": [float(f1["augmented"][j][k]) for j in range(3)]} for k, s in enumerate(slugs) if counts[k]]
    skins = [t if t is not None else 0 for t in test.skin_types]
    acc_b = stats.group_accuracy(y, baseline.predictions, skins)
    acc_a = stats.group_accuracy(y, augmented.predictions, skins)
    pt = stats.paired_test(y, baseline.predictions, augmented.predictions, n_boot=max(2000, cfg.n_boot), seed=cfg.seed)
    source_names = sorted({i.source.name for i in real})
    return {
        "command": command,
        "config": dataclasses.asdict(cfg),
        "steps": baseline.log.steps,
        "data": {"description": _describe_data(real), "sources": source_names},
        "split": {"train_images": len(train_idx), "test_images": len(test_idx),
                  "train_cases": len({items[i].group for i in train_idx}), "test_cases": len({items[i].group for i in test_idx})},
        "synthetic": {"used": len(synth.labels), "how": synth.how},
        "arms": {"baseline": arm(baseline), "augmented": arm(augmented)},
        "paired_test": dataclasses.asdict(pt),
        "classes": classes,
        "skin_types": [{"label": roman(k) if k else "unknown", "n": acc_b[k][1], "baseline": acc_b[k][0],
                        "augmented": acc_a[k][0]} for k in acc_b],
        "notes": synth.notes + _leakage_notes(synth),
        "f1": {name: [v.tolist() for v in values] for name, values in f1.items()},
        "labels": slugs,
    }


def _leakage_notes(synth: SyntheticPick) -> list[str]:
    return [
        "The GAN checkpoint was trained on the catalogue's real images (its own 90/10 case split), so its "
        "weights have seen images that are in this classifier's test split. The synthetic images can carry "
        "information about test images through the generator: an upper bound on the benefit, not a clean "
        "estimate. A clean run trains the GAN on this study's training cases only.",
        "Synthetic images are lesion-centred ROI crops at the generator's resolution (upscaled to the "
        "classifier's input), real images are whole photographs: the arms differ in image framing, as in the patent.",
    ]


def _write(out: Path, result: dict, slugs, test, baseline, augmented) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    y = test.labels.numpy()
    present = [k for k in range(len(slugs)) if (y == k).any()]
    labels = [slugs[k] for k in present]
    f1 = {name: tuple(np.asarray(v)[present] for v in values) for name, values in result["f1"].items()}
    plots = [
        report.f1_bars(out / "f1_per_class.png", labels, f1).name,
        report.confusion_plot(out / "confusion.png", slugs, {
            "baseline": stats.confusion(y, baseline.predictions, len(slugs)),
            "augmented": stats.confusion(y, augmented.predictions, len(slugs))}).name,
        report.group_bars(out / "accuracy_by_skin_type.png", [r["label"] for r in result["skin_types"]],
                          {"baseline": [r["baseline"] for r in result["skin_types"]],
                           "augmented": [r["augmented"] for r in result["skin_types"]]},
                          ylabel="top-1 accuracy", title="Accuracy per Fitzpatrick type (real test split)").name,
    ]
    result["plots"] = plots
    (out / "results.json").write_text(json.dumps(result, indent=1, default=float))
    path = out / "report.md"
    path.write_text(report.augmentation_markdown(result))
    return path
