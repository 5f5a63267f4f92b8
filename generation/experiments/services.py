"""Django side of the experiments: read the catalogue, call the Django-free code, write reports;
create reader studies, invites and answers. Commands and views call these functions."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import random
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone
from PIL import Image as PILImage

from atlas.models import Condition, Image
from atlas.services.ingestion import stored_image_pixels
from atlas.skin import FITZPATRICK_TYPES, roman
from generation.experiments import augmentation as aug
from generation.experiments import report, stats
from generation.experiments.augmentation import ExperimentError
from generation.models import ReaderAnswer, ReaderStudy, StudyInvite, StudyItem

# --- augmentation study -----------------------------------------------------------------------


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


# --- reader studies ---------------------------------------------------------------------------

STUDY_IMAGE_SIZE = 256  # every study image is served at this size, as JPEG, so format and size say nothing
QUIZ_CHOICES = 4
MAX_PER_CONDITION = 200


class StudyError(ValueError):
    """A reader-study action that is refused; the message is safe to show."""


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _draw(queryset, n: int, rng: random.Random) -> list[Image]:
    ids = sorted(queryset.values_list("id", flat=True))
    chosen = rng.sample(ids, min(n, len(ids)))
    by_id = Image.objects.in_bulk(chosen)
    return [by_id[i] for i in chosen]


def reader_study_create(
    *, name: str, kind: str = ReaderStudy.Kind.REALISM, per_condition: int, conditions: list[str] | None = None,
    skin_types: list[int] | None = None, seed: int | None = None, created_by=None,
) -> ReaderStudy:
    """Draw the study's images at random and store them in a shuffled order.

    Realism: N real and N synthetic public images per condition (conditions with none of one
    kind are left out). Quiz: N real public images per condition and skin type."""
    name = (name or "").strip()
    if not name:
        raise StudyError("a study needs a name")
    if not 1 <= per_condition <= MAX_PER_CONDITION:
        raise StudyError(f"images per condition must be 1-{MAX_PER_CONDITION}")
    skin_types = sorted(set(skin_types or []))
    if any(t not in FITZPATRICK_TYPES for t in skin_types):
        raise StudyError("skin types must be Fitzpatrick I-VI (1-6)")
    wanted = Condition.objects.public().order_by("slug")
    if conditions:
        wanted = wanted.filter(slug__in=conditions)
        if wanted.count() != len(set(conditions)):
            raise StudyError("unknown condition in the list")
    seed = secrets.randbelow(2**31) if seed is None else seed
    rng = random.Random(seed)
    pool = Image.objects.public().of_skin_types(skin_types)
    picks: list[tuple[Image, bool]] = []
    for condition in wanted:
        if kind == ReaderStudy.Kind.REALISM:
            real = _draw(pool.real().filter(condition=condition), per_condition, rng)
            synthetic = _draw(pool.synthetic().filter(condition=condition), per_condition, rng)
            if real and synthetic:
                picks += [(i, True) for i in real] + [(i, False) for i in synthetic]
        elif kind == ReaderStudy.Kind.QUIZ:
            for t in skin_types or FITZPATRICK_TYPES:
                picks += [(i, True) for i in _draw(pool.real().filter(condition=condition, fitzpatrick_type=t), per_condition, rng)]
        else:
            raise StudyError(f"unknown study kind {kind!r}")
    if not picks:
        raise StudyError("no images match: a realism study needs real AND synthetic public images of a condition "
                         "(run gap filling first); a quiz needs real images")
    rng.shuffle(picks)
    offered = sorted({image.condition.slug for image, _ in picks})
    with transaction.atomic():
        study = ReaderStudy.objects.create(name=name, kind=kind, per_condition=per_condition, skin_types=skin_types,
                                           seed=seed, created_by=created_by)
        StudyItem.objects.bulk_create([
            StudyItem(study=study, position=k + 1, token=secrets.token_urlsafe(24), image=image,
                      condition_id=image.condition_id, is_real=is_real, skin_type=image.fitzpatrick_type,
                      choices=_quiz_choices(image.condition.slug, offered, rng) if kind == ReaderStudy.Kind.QUIZ else [])
            for k, (image, is_real) in enumerate(picks)
        ])
    return study


def _quiz_choices(truth: str, offered: list[str], rng: random.Random) -> list[str]:
    others = [s for s in offered if s != truth]
    choices = [truth, *rng.sample(others, min(QUIZ_CHOICES - 1, len(others)))]
    rng.shuffle(choices)
    return choices


def study_invites_create(*, study: ReaderStudy, usernames: list[str] = (), links: int = 0) -> list[tuple[StudyInvite, str | None]]:
    """Invite accounts by username and/or make `links` one-time links. Returns (invite, token);
    a link's token is returned only now (only its hash is stored)."""
    if study.kind != ReaderStudy.Kind.REALISM:
        raise StudyError("a quiz is public: it needs no invitations")
    if not 0 <= links <= 100:
        raise StudyError("one-time links: 0-100 at a time")
    usernames = [u.strip() for u in usernames if u.strip()]
    users = {u.username: u for u in get_user_model().objects.filter(username__in=usernames, is_active=True)}
    missing = sorted(set(usernames) - set(users))
    if missing:
        raise StudyError(f"no active account named {', '.join(missing)}")
    if not usernames and not links:
        raise StudyError("name at least one account or ask for at least one link")
    already = set(study.invites.filter(user__in=users.values()).values_list("user__username", flat=True))
    if already:
        raise StudyError(f"already invited: {', '.join(sorted(already))}")
    made: list[tuple[StudyInvite, str | None]] = []
    with transaction.atomic():
        count = study.invites.count()
        for username in usernames:
            count += 1
            made.append((StudyInvite.objects.create(study=study, user=users[username], label=f"reader {count} ({username})"), None))
        for _ in range(links):
            count += 1
            token = secrets.token_urlsafe(24)
            made.append((StudyInvite.objects.create(study=study, token_hash=_hash(token), label=f"reader {count} (link)"), token))
    return made


def study_invite_claim(*, token: str, session_key: str) -> StudyInvite:
    """The invite behind a one-time link, bound to the first browser session that opens it."""
    with transaction.atomic():
        invite = StudyInvite.objects.select_for_update().select_related("study").filter(token_hash=_hash(token)).first()
        if invite is None:
            raise StudyError("this invitation link is not valid")
        if not invite.session_hash:
            invite.session_hash = _hash(session_key)
            invite.save(update_fields=["session_hash"])
        elif invite.session_hash != _hash(session_key):
            raise StudyError("this invitation link was already used in another browser; ask for a new one")
    return invite


def study_invite_for(*, study: ReaderStudy, user=None, session_key: str | None = None, create: bool = False) -> StudyInvite | None:
    """The reader's invite: by account, else by the browser session (a claimed link, or a quiz
    session created on first use when `create`)."""
    if user is not None and user.is_authenticated:
        invite = study.invites.filter(user=user).first()
        if invite:
            return invite
    if not session_key:
        return None
    invite = study.invites.filter(session_hash=_hash(session_key)).first()
    if invite is None and create and study.kind == ReaderStudy.Kind.QUIZ:
        try:
            with transaction.atomic():
                invite = StudyInvite.objects.create(study=study, session_hash=_hash(session_key), label="quiz visitor")
        except IntegrityError:  # a parallel request of the same session made it
            invite = study.invites.get(session_hash=_hash(session_key))
    return invite


def study_next_item(*, invite: StudyInvite) -> StudyItem | None:
    done = invite.answers.values_list("item_id", flat=True)
    return invite.study.items.filter(image__isnull=False).exclude(id__in=done).select_related("condition").first()


def study_progress(*, invite: StudyInvite) -> tuple[int, int]:
    return invite.answers.count(), invite.study.items.filter(image__isnull=False).count()


def reader_answer_record(
    *, invite: StudyInvite, item_token: str, judged_real: bool | None = None, shows_condition: bool | None = None,
    chosen: str | None = None,
) -> ReaderAnswer:
    """Store one answer. A second answer to the same item is refused and changes nothing."""
    study = invite.study
    if not study.is_open:
        raise StudyError("this study is closed")
    item = study.items.filter(token=item_token, image__isnull=False).first()
    if item is None:
        raise StudyError("that image is not part of this study")
    fields: dict = {}
    if study.kind == ReaderStudy.Kind.REALISM:
        if judged_real is None or shows_condition is None:
            raise StudyError("answer both questions")
        fields = {"judged_real": judged_real, "shows_condition": shows_condition}
    else:
        if chosen not in item.choices:
            raise StudyError("choose one of the offered conditions")
        fields = {"chosen": Condition.objects.get(slug=chosen)}
    try:
        with transaction.atomic():
            answer = ReaderAnswer.objects.create(invite=invite, item=item, **fields)
    except IntegrityError:
        raise StudyError("you have already answered this image; answers cannot be changed") from None
    if study_next_item(invite=invite) is None and invite.finished_at is None:
        StudyInvite.objects.filter(pk=invite.pk).update(finished_at=timezone.now())
    return answer


def study_image_jpeg(*, item: StudyItem) -> bytes:
    """The item's pixels, square STUDY_IMAGE_SIZE, re-encoded as JPEG without metadata: real and
    synthetic images leave in the same format and size, whatever they were stored as."""
    if item.image is None:
        raise StudyError("the image was removed from the catalogue")
    pixels = aug.to_square(stored_image_pixels(item.image.file.name), STUDY_IMAGE_SIZE)
    buffer = io.BytesIO()
    PILImage.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _answer_rows(study: ReaderStudy) -> list[ReaderAnswer]:
    return list(ReaderAnswer.objects.filter(item__study=study).select_related("invite", "item__condition", "chosen")
                .order_by("invite_id", "item__position"))


@dataclass
class StudyResults:
    conditions: list[stats.ConditionRates]
    overall: stats.ConditionRates
    readers: int
    answers: int
    items: int


def study_results(*, study: ReaderStudy) -> StudyResults:
    rows = [stats.ReaderAnswerRow(str(a.invite_id), a.item.condition.slug, a.item.is_real, a.judged_real, a.shows_condition)
            for a in _answer_rows(study)]
    per_condition, overall = stats.reader_rates(rows)
    return StudyResults(per_condition, overall, len({r.reader for r in rows}), len(rows), study.items.count())


def study_results_plot(*, study: ReaderStudy, path: Path) -> Path:
    results = study_results(study=study)
    return report.reader_plot(path, results.conditions, overall=results.overall)


CSV_HEADER = ["reader", "position", "item", "condition", "skin_type", "truth", "judged_real", "shows_condition",
              "chosen", "correct", "answered_at"]


def study_results_csv(*, study: ReaderStudy) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for a in _answer_rows(study):
        item = a.item
        writer.writerow([a.invite.label or f"invite {a.invite_id}", item.position, item.token, item.condition.slug,
                         item.skin_type or "", "real" if item.is_real else "synthetic",
                         "" if a.judged_real is None else ("real" if a.judged_real else "synthetic"),
                         "" if a.shows_condition is None else ("yes" if a.shows_condition else "no"),
                         a.chosen.slug if a.chosen else "",
                         "" if a.chosen is None else int(a.chosen_id == item.condition_id), a.created_at.isoformat()])
    return out.getvalue()


@dataclass
class SkinScore:
    skin_type: int | None
    label: str
    correct: int
    answered: int


def quiz_score(*, invite: StudyInvite) -> list[SkinScore]:
    """Correct answers per skin type of the images this visitor answered."""
    scores: dict[int | None, list[int]] = {}
    for a in invite.answers.select_related("item"):
        entry = scores.setdefault(a.item.skin_type, [0, 0])
        entry[0] += a.chosen_id == a.item.condition_id
        entry[1] += 1
    return [SkinScore(t, f"Type {roman(t)}" if t else "unknown", c, n) for t, (c, n) in sorted(scores.items(), key=lambda kv: kv[0] or 0)]
