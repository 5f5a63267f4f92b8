"""Django side of the reader studies (FIG. 10 realism / relevance, and the public quiz): draw
the items, invite readers, record answers, serve blinded images, compute results. Views and the
admin call these functions."""

from __future__ import annotations

import csv
import hashlib
import io
import random
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone
from PIL import Image as PILImage

from atlas.models import Condition, Image
from atlas.services.ingestion import stored_image_pixels
from atlas.skin import FITZPATRICK_TYPES, roman
from generation.experiments import augmentation as aug
from generation.experiments import report, stats
from generation.models import ReaderAnswer, ReaderStudy, StudyInvite, StudyItem

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


def reader_study_set_open(*, study: ReaderStudy, is_open: bool) -> ReaderStudy:
    """Close a study (answers are refused, nothing is deleted) or reopen it. Idempotent."""
    ReaderStudy.objects.filter(pk=study.pk).update(is_open=is_open)
    study.is_open = is_open
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
