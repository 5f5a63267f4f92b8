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
from django.db import IntegrityError, models, transaction
from django.db.models import Count, Q
from django.utils import timezone

from atlas.models import Condition, Image, public_q
from atlas.services.ingestion import stored_image_pixels
from atlas.skin import FITZPATRICK_TYPES, roman
from generation.experiments import blinding, report, stats
from generation.experiments.images import to_square
from generation.models import ReaderAnswer, ReaderStudy, StudyInvite, StudyItem

QUIZ_CHOICES = 4
MAX_PER_CONDITION = 200


class StudyError(ValueError):
    """A reader-study action that is refused; the message is safe to show."""


class Unmatched(models.TextChoices):
    """What to do when some synthetic images have no real images of their condition on their skin type."""

    REFUSE = "refuse", "Warn and create nothing"
    RESTRICT = "restrict", "Restrict the study to the skin types where every condition is matched"
    LEAVE_OUT = "leave_out", "Leave the unmatched images out"


@dataclass
class ConditionBalance:
    """Public images of one condition per skin type, by kind (types known only)."""

    slug: str
    name: str
    real: dict[int, int]
    synthetic: dict[int, int]

    @property
    def matched(self) -> list[int]:
        return sorted(t for t in self.synthetic if self.real.get(t))

    @property
    def unmatched(self) -> list[int]:
        """Types with synthetic images and no real ones: drawing those would let skin tone tell."""
        return sorted(t for t in self.synthetic if not self.real.get(t))

    def warning(self) -> str:
        real = ", ".join(roman(t) for t in sorted(self.real)) or "none"
        return (f"{self.name}: synthetic images on type{'s' if len(self.unmatched) > 1 else ''} "
                f"{', '.join(roman(t) for t in self.unmatched)} have no real images on the same type "
                f"(real images on: {real}).")


@dataclass
class RealismPlan:
    """What a realism study over these conditions and types could match, before drawing."""

    skin_types: list[int]
    conditions: list[ConditionBalance]

    @property
    def unmatched(self) -> list[ConditionBalance]:
        return [c for c in self.conditions if c.unmatched]

    @property
    def restrict_to(self) -> list[int]:
        """The types where no condition has synthetic images without real ones, and some
        condition has both: restricting the study to them removes every warning."""
        bad = {t for c in self.conditions for t in c.unmatched}
        good = {t for c in self.conditions for t in c.matched}
        return sorted(good - bad)

    def warnings(self) -> list[str]:
        return [c.warning() for c in self.unmatched]


class StudyUnmatched(StudyError):
    """Refused because synthetic images would be drawn from types with no matching real images."""

    def __init__(self, plan: RealismPlan) -> None:
        self.plan = plan
        if plan.restrict_to:
            offer = f"You can restrict the study to types {', '.join(roman(t) for t in plan.restrict_to)}, or leave them out."
        else:
            offer = "Restricting skin types would not help (every type with both kinds has such a gap); you can leave them out."
        super().__init__("Real and synthetic images are matched per condition and skin type, so these synthetic images "
                         f"cannot be used: {' '.join(plan.warnings())} {offer}")


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _draw(queryset, n: int, rng: random.Random) -> list[Image]:
    ids = sorted(queryset.values_list("id", flat=True))
    chosen = rng.sample(ids, min(n, len(ids)))
    by_id = Image.objects.in_bulk(chosen)
    return [by_id[i] for i in chosen]


def _checked_choice(*, per_condition: int, conditions: list[str] | None, skin_types: list[int] | None):
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
    return list(wanted), skin_types


def _study_pool(skin_types: list[int]):
    """The images a study may draw: public under THE visibility rule (so synthetic ones are
    approved), of the chosen skin types."""
    return Image.objects.public().of_skin_types(skin_types)


def realism_plan(*, conditions: list[str] | None = None, skin_types: list[int] | None = None) -> RealismPlan:
    """Count public real and synthetic images per condition and skin type (only conditions
    with synthetic images on the chosen types); nothing is drawn or stored."""
    wanted, skin_types = _checked_choice(per_condition=1, conditions=conditions, skin_types=skin_types)
    return _plan(wanted, skin_types)


def _plan(wanted: list[Condition], skin_types: list[int]) -> RealismPlan:
    rows = (_study_pool(skin_types).filter(condition__in=wanted, fitzpatrick_type__isnull=False)
            .values_list("condition_id", "origin", "fitzpatrick_type").annotate(n=Count("id")))
    counts: dict[int, dict[str, dict[int, int]]] = {}
    for condition_id, origin, skin_type, n in rows:
        counts.setdefault(condition_id, {}).setdefault(origin, {})[skin_type] = n
    balances = [ConditionBalance(c.slug, c.name, counts[c.id].get(Image.Origin.REAL, {}), counts[c.id][Image.Origin.SYNTHETIC])
                for c in wanted if Image.Origin.SYNTHETIC in counts.get(c.id, {})]
    return RealismPlan(skin_types or list(FITZPATRICK_TYPES), balances)


def _allocate(capacity: dict[int, int], n: int, rng: random.Random) -> dict[int, int]:
    """Spread n pairs over the skin types round-robin (in a seeded order), within each type's capacity."""
    types = sorted(t for t, c in capacity.items() if c > 0)
    rng.shuffle(types)
    take = dict.fromkeys(types, 0)
    while n and any(take[t] < capacity[t] for t in types):
        for t in types:
            if n and take[t] < capacity[t]:
                take[t] += 1
                n -= 1
    return take


def _realism_picks(wanted: list[Condition], skin_types: list[int], per_condition: int, unmatched: str,
                   rng: random.Random) -> tuple[list[tuple[Image, bool]], list[int]]:
    """Stratified draw: for each condition and skin type, as many real as synthetic images, so
    neither the condition nor the skin tone says which is which. Up to N pairs per condition."""
    plan = _plan(wanted, skin_types)
    if plan.unmatched:
        if unmatched == Unmatched.REFUSE:
            raise StudyUnmatched(plan)
        if unmatched == Unmatched.RESTRICT:
            if not plan.restrict_to:
                raise StudyError("no skin type has real and synthetic images of these conditions without a gap; "
                                 "leave the unmatched images out instead")
            skin_types = plan.restrict_to
            plan = _plan(wanted, skin_types)
    pool = _study_pool(skin_types)
    picks: list[tuple[Image, bool]] = []
    by_slug = {c.slug: c for c in wanted}
    for balance in plan.conditions:
        capacity = {t: min(balance.real[t], balance.synthetic[t]) for t in balance.matched}
        for skin_type, k in sorted(_allocate(capacity, per_condition, rng).items()):
            cell = pool.filter(condition=by_slug[balance.slug], fitzpatrick_type=skin_type)
            picks += [(i, True) for i in _draw(cell.real(), k, rng)] + [(i, False) for i in _draw(cell.synthetic(), k, rng)]
    return picks, skin_types


def reader_study_create(
    *, name: str, kind: str = ReaderStudy.Kind.REALISM, per_condition: int, conditions: list[str] | None = None,
    skin_types: list[int] | None = None, seed: int | None = None, created_by=None, unmatched: str = Unmatched.REFUSE,
) -> ReaderStudy:
    """Draw the study's images at random and store them in a shuffled order.

    Realism: per condition, up to N real and N synthetic public images, matched per skin type
    (as many real as synthetic on each type; conditions without a matched type are left out).
    When synthetic images of a condition sit on types with no real ones, `unmatched` says
    what to do: refuse with a warning (StudyUnmatched), restrict the types, or leave them out.
    Quiz: N real public images per condition and skin type."""
    name = (name or "").strip()
    if not name:
        raise StudyError("a study needs a name")
    if unmatched not in Unmatched.values:
        raise StudyError(f"unknown choice for unmatched images {unmatched!r}")
    wanted, skin_types = _checked_choice(per_condition=per_condition, conditions=conditions, skin_types=skin_types)
    seed = secrets.randbelow(2**31) if seed is None else seed
    rng = random.Random(seed)
    pool = _study_pool(skin_types)
    picks: list[tuple[Image, bool]] = []
    if kind == ReaderStudy.Kind.REALISM:
        picks, skin_types = _realism_picks(wanted, skin_types, per_condition, unmatched, rng)
    elif kind == ReaderStudy.Kind.QUIZ:
        for condition in wanted:
            for t in skin_types or FITZPATRICK_TYPES:
                picks += [(i, True) for i in _draw(pool.real().filter(condition=condition, fitzpatrick_type=t), per_condition, rng)]
    else:
        raise StudyError(f"unknown study kind {kind!r}")
    if not picks:
        raise StudyError("no images match: a realism study needs real AND synthetic public images of a condition "
                         "on the same skin type (run gap filling first); a quiz needs real images")
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


@dataclass
class BalanceRow:
    condition: str
    skin_type: int | None
    label: str
    real: int
    synthetic: int


def study_balance(*, study: ReaderStudy) -> list[BalanceRow]:
    """The drawn items per condition and skin type, real beside synthetic (for the study page)."""
    rows = (study.items.values_list("condition__name", "skin_type", "is_real").annotate(n=Count("id"))
            .order_by("condition__name", "skin_type"))
    table: dict[tuple[str, int | None], list[int]] = {}
    for name, skin_type, is_real, n in rows:
        table.setdefault((name, skin_type), [0, 0])[0 if is_real else 1] += n
    return [BalanceRow(name, t, roman(t) if t else "unknown", real, synthetic) for (name, t), (real, synthetic) in table.items()]


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


def _showable(study: ReaderStudy):
    """Items whose image is still public: one a curator hid or a reviewer rejected since the
    draw is no longer shown (its answers, if any, stay in the results)."""
    return study.items.filter(public_q("image__"))


def study_next_item(*, invite: StudyInvite) -> StudyItem | None:
    done = invite.answers.values_list("item_id", flat=True)
    return _showable(invite.study).exclude(id__in=done).select_related("condition").first()


def study_progress(*, invite: StudyInvite) -> tuple[int, int]:
    shown = invite.study.items.filter(public_q("image__") | Q(answers__invite=invite)).distinct()
    return invite.answers.count(), shown.count()


def reader_answer_record(
    *, invite: StudyInvite, item_token: str, judged_real: bool | None = None, shows_condition: bool | None = None,
    chosen: str | None = None,
) -> ReaderAnswer:
    """Store one answer. A second answer to the same item is refused and changes nothing."""
    study = invite.study
    if not study.is_open:
        raise StudyError("this study is closed")
    item = _showable(study).filter(token=item_token).first()
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


def study_image_png(*, item: StudyItem) -> bytes:
    """The item's pixels, square STUDY_IMAGE_SIZE, as a PNG of exactly STUDY_IMAGE_BYTES without
    metadata (generation/experiments/blinding.py): real and synthetic images leave in the same
    format, dimensions and byte length, whatever they were stored as."""
    if item.image is None or not Image.objects.public().filter(pk=item.image_id).exists():
        raise StudyError("the image was removed from the catalogue")
    pixels = to_square(stored_image_pixels(item.image.file.name), blinding.STUDY_IMAGE_SIZE)
    return blinding.fixed_length_png(pixels, seed=item.token)


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
