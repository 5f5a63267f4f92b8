"""The teaching quiz: a standing quiz that is always open, feedback and review of missed
images, spaced repetition (FSRS) for signed-in learners, and their accuracy by skin type over
time. Staff-made quizzes (reader studies of kind quiz, generation/experiments/reader_studies.py) share
the feedback, the end screen and the spaced repetition.

Views call these functions; they raise QuizError (its message is safe to show), never HTTP errors.
"""

from __future__ import annotations

import hashlib
import io
import random
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone

from django.db import transaction
from django.db.models import Count, Q
from django.db.models.functions import TruncWeek
from django.utils import timezone
from fsrs import Card, Rating, Scheduler

from atlas.models import Condition, Image
from atlas.services.ingestion import stored_image_pixels
from atlas.skin import FITZPATRICK_TYPES, roman
from generation.experiments import reader_studies as studies
from generation.models import QuizCard, QuizReview, QuizRound, QuizRoundItem, ReaderAnswer, StudyInvite

ROUND_SIZE = 12  # two pictures per Fitzpatrick type when the catalogue has them
REVIEW_SHARE = ROUND_SIZE // 2  # due reviews fill at most half a round, so every round also shows new pictures
CHOICES = 4
PICTURE_MAX_SIDE = 512
PROGRESS_WEEKS = 12

# A miss comes back after 10 minutes at the earliest (the next round, not the same one); a right
# answer after a miss graduates the card to FSRS's day-scale intervals. Fuzzing spreads reviews.
SCHEDULER = Scheduler(learning_steps=(timedelta(minutes=10),), relearning_steps=(timedelta(minutes=10),))


class QuizError(ValueError):
    """A quiz action that is refused; the message is safe to show."""


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _utc(now: datetime | None) -> datetime:
    return (now or timezone.now()).astimezone(dt_timezone.utc)  # fsrs insists on UTC


def _learner(user) -> object | None:
    return user if user is not None and getattr(user, "is_authenticated", False) else None


# --- drawing a round ----------------------------------------------------------------------------


def _cells() -> dict[tuple[int, str], dict[int, int]]:
    """(skin type, origin) -> {condition id: public images}, for images with a known type."""
    rows = (Image.objects.public().filter(fitzpatrick_type__isnull=False)
            .values("fitzpatrick_type", "origin", "condition_id").annotate(n=Count("id")))
    cells: dict[tuple[int, str], dict[int, int]] = {}
    for row in rows:
        cells.setdefault((row["fitzpatrick_type"], row["origin"]), {})[row["condition_id"]] = row["n"]
    return cells


def standing_quiz_draw(*, size: int, rng: random.Random, exclude: Iterable[int] = ()) -> list[Image]:
    """Up to `size` public images, balanced by skin type where the catalogue allows.

    Passes over the six types in a shuffled order take one picture per type, until the round is
    full or the catalogue runs out, so a type with few images gives its places to the others.
    Within a type real photographs come first; approved synthetic ones only fill a type whose
    real images are used up (the pages badge them). Each pick prefers a condition the round has
    not shown yet. Images of unknown skin type are left out: the score is per type."""
    cells = _cells()
    excluded = set(exclude)
    picked: list[Image] = []
    used_conditions: set[int] = set()
    while len(picked) < size:
        progressed = False
        types = list(FITZPATRICK_TYPES)
        rng.shuffle(types)
        for skin_type in types:
            if len(picked) == size:
                break
            image = _pick_in_type(cells, skin_type, rng, excluded, used_conditions)
            if image is not None:
                picked.append(image)
                excluded.add(image.id)
                used_conditions.add(image.condition_id)
                progressed = True
        if not progressed:
            break
    return picked


def _pick_in_type(cells, skin_type: int, rng: random.Random, excluded: set[int], used: set[int]) -> Image | None:
    for origin in (Image.Origin.REAL, Image.Origin.SYNTHETIC):
        counts = cells.get((skin_type, origin), {})
        while counts:
            fresh = sorted(c for c in counts if c not in used) or sorted(counts)
            condition_id = rng.choice(fresh)
            candidates = (Image.objects.public().filter(fitzpatrick_type=skin_type, origin=origin, condition_id=condition_id)
                          .exclude(id__in=excluded).order_by("id"))
            n = candidates.count()
            if n:
                counts[condition_id] -= 1
                if counts[condition_id] <= 0:
                    del counts[condition_id]
                return candidates.select_related("condition")[rng.randrange(n)]
            del counts[condition_id]  # every image of this cell is excluded or taken
    return None


def _offered_slugs() -> list[str]:
    """Conditions a quiz may offer: public ones with at least one public image (their pages teach)."""
    return sorted(Condition.objects.public().filter(images__in=Image.objects.public()).values_list("slug", flat=True).distinct())


LOOKALIKE_CHOICES = 2  # of the three wrong choices, up to two are listed look-alikes of the right one


def _lookalikes(offered: list[str]) -> dict[str, list[str]]:
    """slug -> the offered conditions its teaching text lists as look-alikes (Condition.lookalikes)."""
    pairs = Condition.lookalikes.through.objects.filter(
        from_condition__slug__in=offered, to_condition__slug__in=offered).values_list("from_condition__slug", "to_condition__slug")
    table: dict[str, list[str]] = {}
    for a, b in pairs:
        if a != b:
            table.setdefault(a, []).append(b)
    return {a: sorted(bs) for a, bs in table.items()}


def _choices(truth: str, offered: list[str], rng: random.Random, lookalikes: dict[str, list[str]]) -> list[str]:
    """The right condition, up to LOOKALIKE_CHOICES of its look-alikes (the confusions worth
    learning), and random others, shuffled."""
    near = lookalikes.get(truth, [])
    wrong = rng.sample(near, min(LOOKALIKE_CHOICES, len(near), CHOICES - 1))
    others = [s for s in offered if s != truth and s not in wrong]
    wrong += rng.sample(others, min(CHOICES - 1 - len(wrong), len(others)))
    choices = [truth, *wrong]
    rng.shuffle(choices)
    return choices


def often_confused(a: Condition, b: Condition) -> bool:
    """Whether the teaching text of either condition lists the other as a look-alike."""
    return Condition.lookalikes.through.objects.filter(
        Q(from_condition=a, to_condition=b) | Q(from_condition=b, to_condition=a)).exists()


def quiz_due_cards(*, user, now: datetime | None = None):
    """The learner's cards that are due, on images that are still public, most overdue first."""
    return (QuizCard.objects.filter(user=user, due__lte=_utc(now)).filter(
        Q(image__in=Image.objects.public())).select_related("image__condition").order_by("due", "id"))


def quiz_round_start(*, user=None, session_key: str | None = None, now: datetime | None = None,
                     seed: int | None = None, size: int = ROUND_SIZE) -> QuizRound:
    """A new round of the standing quiz. A signed-in learner's due reviews come first (at most
    half the round); the rest is a fresh balanced draw of images not in their deck."""
    learner = _learner(user)
    if learner is None and not session_key:
        raise QuizError("a quiz needs a browser session (allow cookies) or an account")
    if not 1 <= size <= 60:
        raise QuizError("a round has 1-60 pictures")
    offered = _offered_slugs()
    if len(offered) < 2:
        raise QuizError("the quiz needs public images of at least two conditions; none are in the catalogue yet")
    rng = random.Random(secrets.randbelow(2**31) if seed is None else seed)
    reviews: list[Image] = []
    deck: set[int] = set()
    if learner is not None:
        reviews = [card.image for card in quiz_due_cards(user=learner, now=now)[: min(REVIEW_SHARE, size)]]
        deck = set(QuizCard.objects.filter(user=learner).values_list("image_id", flat=True))
    # New pictures are ones the learner never missed: deck images come back only when FSRS says so.
    fresh = standing_quiz_draw(size=size - len(reviews), rng=rng, exclude=deck)
    if not reviews and not fresh and deck:  # every picture is scheduled for later: show some anyway
        fresh = standing_quiz_draw(size=size, rng=rng)
    picks = [(image, True) for image in reviews] + [(image, False) for image in fresh]
    if not picks:
        raise QuizError("no public images with a known skin type are in the catalogue yet")
    rng.shuffle(picks)
    lookalikes = _lookalikes(offered)
    with transaction.atomic():
        round_ = QuizRound.objects.create(user=learner, session_hash="" if learner else _hash(session_key))
        QuizRoundItem.objects.bulk_create([
            QuizRoundItem(round=round_, position=k + 1, token=secrets.token_urlsafe(24), image=image,
                          condition_id=image.condition_id, skin_type=image.fitzpatrick_type, is_synthetic=image.is_synthetic,
                          is_review=is_review, choices=_choices(image.condition.slug, offered, rng, lookalikes))
            for k, (image, is_review) in enumerate(picks)
        ])
    return round_


def quiz_round_for(*, public_id, user=None, session_key: str | None = None) -> QuizRound:
    """The round, if it belongs to this learner (account) or this browser session; otherwise the
    same refusal whether it exists or not, so round ids cannot be probed."""
    round_ = QuizRound.objects.filter(public_id=public_id).first()
    learner = _learner(user)
    if round_ is not None:
        if round_.user_id is not None and learner is not None and round_.user_id == learner.pk:
            return round_
        if round_.user_id is None and session_key and round_.session_hash == _hash(session_key):
            return round_
    raise QuizError("this quiz is not yours (it belongs to another account or browser session): start a new one")


def quiz_round_items(*, round_: QuizRound):
    return round_.items.select_related("condition", "chosen", "image")


def quiz_round_next(*, round_: QuizRound) -> QuizRoundItem | None:
    return quiz_round_items(round_=round_).filter(chosen__isnull=True).first()


def quiz_round_item(*, round_: QuizRound, position: int) -> QuizRoundItem:
    item = quiz_round_items(round_=round_).filter(position=position).first()
    if item is None:
        raise QuizError(f"this quiz has no picture {position}")
    return item


def quiz_picture_jpeg(*, token: str) -> bytes:
    """The picture behind a round item's opaque token (its URL says nothing of the answer),
    re-encoded as JPEG, longest side at most PICTURE_MAX_SIDE."""
    item = QuizRoundItem.objects.select_related("image").filter(token=token).first()
    if item is None or item.image is None:
        raise QuizError("no such picture")
    pixels = stored_image_pixels(item.image.file.name)
    pixels.thumbnail((PICTURE_MAX_SIDE, PICTURE_MAX_SIDE))
    buffer = io.BytesIO()
    pixels.save(buffer, format="JPEG", quality=88)
    return buffer.getvalue()


# --- answering ----------------------------------------------------------------------------------


@dataclass
class QuizOutcome:
    item: QuizRoundItem
    counted: bool  # False: this answer was already recorded (a replay or a second tab): counted once
    refused_change: bool = False  # a replay that tried a different answer: the first one stands


def quiz_answer_record(*, round_: QuizRound, item_token: str, chosen: str, now: datetime | None = None) -> QuizOutcome:
    """Record the answer to one picture of the round. A replay (the same form sent twice, a stale
    tab) changes nothing and is counted once; the outcome says so."""
    item = quiz_round_items(round_=round_).filter(token=item_token).first()
    if item is None:
        raise QuizError("that picture is not part of this quiz")
    if chosen not in item.choices:
        raise QuizError("choose one of the offered conditions")
    condition = Condition.objects.filter(slug=chosen).first()
    if condition is None:
        raise QuizError("choose one of the offered conditions")
    at = _utc(now)
    with transaction.atomic():
        # The conditional update is the lock: of two racing requests exactly one changes the row.
        counted = QuizRoundItem.objects.filter(pk=item.pk, chosen__isnull=True).update(chosen=condition, answered_at=at) == 1
        if counted:
            if round_.user_id is not None:
                learner_review_record(user=round_.user, image=item.image, skin_type=item.skin_type,
                                      correct=condition.pk == item.condition_id, now=at)
            if not round_.items.filter(chosen__isnull=True).exists():
                QuizRound.objects.filter(pk=round_.pk, finished_at__isnull=True).update(finished_at=at)
    item.refresh_from_db()
    return QuizOutcome(item, counted, refused_change=not counted and item.chosen_id != condition.pk)


def learner_review_record(*, user, image: Image | None, skin_type: int | None, correct: bool,
                          now: datetime | None = None) -> QuizCard | None:
    """Log one answer of a signed-in learner and schedule the image: a miss puts it in (or back
    into) the learner's deck with FSRS rating Again; a right answer to a card in the deck rates it
    Good. Right answers to images never missed make no card: the deck holds missed images."""
    at = _utc(now)
    QuizReview.objects.create(user=user, image=image, skin_type=skin_type, correct=correct, reviewed_at=at)
    if image is None or (correct and not QuizCard.objects.filter(user=user, image=image).exists()):
        return None
    with transaction.atomic():
        row, _ = QuizCard.objects.get_or_create(user=user, image=image, defaults={
            "card": Card(card_id=image.pk, due=at).to_dict(), "due": at})
        row = QuizCard.objects.select_for_update().get(pk=row.pk)
        card, _log = SCHEDULER.review_card(Card.from_dict(row.card), Rating.Good if correct else Rating.Again,
                                           review_datetime=at)
        row.card, row.due, row.reviews = card.to_dict(), card.due, row.reviews + 1
        row.lapses += 0 if correct else 1
        row.save(update_fields=["card", "due", "reviews", "lapses"])
    return row


# --- staff-made quizzes: the same feedback, end screen and spaced repetition ---------------------


@dataclass
class StaffQuizOutcome:
    answer: ReaderAnswer
    counted: bool
    refused_change: bool = False


def staff_quiz_answer_record(*, invite: StudyInvite, item_token: str, chosen: str, user=None) -> StaffQuizOutcome:
    """Answer one picture of a staff-made quiz (reader study of kind quiz). A replay is answered
    with the first answer and counted once; a signed-in learner's answer feeds their deck."""
    with transaction.atomic():
        try:
            answer = studies.reader_answer_record(invite=invite, item_token=item_token, chosen=chosen)
        except studies.StudyError as exc:
            earlier = staff_quiz_answer(invite=invite, item_token=item_token)
            if earlier is None:
                raise QuizError(str(exc)) from exc
            return StaffQuizOutcome(earlier, False, refused_change=earlier.chosen.slug != chosen)
        learner = _learner(user)
        if learner is not None:
            learner_review_record(user=learner, image=answer.item.image, skin_type=answer.item.skin_type,
                                  correct=answer.chosen_id == answer.item.condition_id)
    return StaffQuizOutcome(answer, True)


def staff_quiz_answer(*, invite: StudyInvite, item_token: str) -> ReaderAnswer | None:
    return (invite.answers.select_related("item__condition", "item__image", "chosen")
            .filter(item__token=item_token).first())


# --- end screen and progress --------------------------------------------------------------------


@dataclass
class SkinScore:
    skin_type: int | None
    label: str
    correct: int
    answered: int


@dataclass
class Missed:
    token: str  # the picture's opaque token (round item or study item)
    condition: Condition  # the right answer
    chosen: Condition
    skin_type: int | None
    is_synthetic: bool
    image: Image | None  # None once a curator removed it
    is_public: bool


@dataclass
class QuizSummary:
    scores: list[SkinScore]
    missed: list[Missed]
    answered: int
    correct: int
    in_deck: int = 0  # signed-in learner: missed images now scheduled for review


def skin_scores(rows: Iterable[tuple[int | None, bool]]) -> list[SkinScore]:
    """Right answers per skin type, from (skin type, correct) pairs; unknown types last."""
    tally: dict[int | None, list[int]] = {}
    for skin_type, correct in rows:
        entry = tally.setdefault(skin_type, [0, 0])
        entry[0] += bool(correct)
        entry[1] += 1
    return [SkinScore(t, f"Type {roman(t)}" if t else "unknown", c, n)
            for t, (c, n) in sorted(tally.items(), key=lambda kv: kv[0] or 99)]


def _public_ids(images: Iterable[Image | None]) -> set[int]:
    ids = [image.pk for image in images if image is not None]
    return set(Image.objects.public().filter(pk__in=ids).values_list("pk", flat=True))


def public_image_id(image: Image | None):
    """The image's public id when it is public (its page may be linked), else None."""
    return image.public_id if image is not None and image.pk in _public_ids([image]) else None


def quiz_round_summary(*, round_: QuizRound) -> QuizSummary:
    items = [i for i in quiz_round_items(round_=round_) if i.is_answered]
    public = _public_ids(i.image for i in items)
    missed = [Missed(i.token, i.condition, i.chosen, i.skin_type, i.is_synthetic, i.image, i.image_id in public)
              for i in items if not i.is_correct]
    in_deck = 0
    if round_.user_id is not None:
        in_deck = QuizCard.objects.filter(user_id=round_.user_id, image_id__in=[m.image.pk for m in missed if m.image]).count()
    return QuizSummary(skin_scores((i.skin_type, i.is_correct) for i in items), missed, len(items),
                       sum(i.is_correct for i in items), in_deck)


def staff_quiz_summary(*, invite: StudyInvite, user=None) -> QuizSummary:
    answers = list(invite.answers.select_related("item__condition", "item__image", "chosen").order_by("item__position"))
    public = _public_ids(a.item.image for a in answers)
    missed = [Missed(a.item.token, a.item.condition, a.chosen, a.item.skin_type, not a.item.is_real, a.item.image,
                     a.item.image_id in public) for a in answers if a.chosen_id != a.item.condition_id]
    learner = _learner(user)
    in_deck = 0
    if learner is not None:
        in_deck = QuizCard.objects.filter(user=learner, image_id__in=[m.image.pk for m in missed if m.image]).count()
    return QuizSummary(skin_scores((a.item.skin_type, a.chosen_id == a.item.condition_id) for a in answers), missed,
                       len(answers), sum(a.chosen_id == a.item.condition_id for a in answers), in_deck)


@dataclass
class ProgressWeek:
    start: date
    cells: list[tuple[int, int]]  # (right, answered) per Fitzpatrick type I-VI
    right: int
    answered: int


@dataclass
class LearnerProgress:
    weeks: list[ProgressWeek]  # most recent first, weeks with answers only
    overall: list[tuple[int, int]]  # (right, answered) per type I-VI, all time
    due_now: int
    in_deck: int
    next_due: datetime | None
    types: list[str] = field(default_factory=lambda: [roman(t) for t in FITZPATRICK_TYPES])

    @property
    def overall_right(self) -> int:
        return sum(right for right, _ in self.overall)

    @property
    def overall_answered(self) -> int:
        return sum(answered for _, answered in self.overall)


def learner_progress(*, user, now: datetime | None = None, weeks: int = PROGRESS_WEEKS) -> LearnerProgress:
    """A signed-in learner's accuracy per Fitzpatrick type, per week (UTC, weeks start on Monday)."""
    at = _utc(now)
    since = at - timedelta(weeks=weeks)
    rows = (QuizReview.objects.filter(user=user, reviewed_at__gte=since, skin_type__isnull=False)
            .annotate(week=TruncWeek("reviewed_at", tzinfo=dt_timezone.utc))
            .values("week", "skin_type").annotate(answered=Count("id"), right=Count("id", filter=Q(correct=True))))
    by_week: dict[date, list[list[int]]] = {}
    for row in rows:
        cells = by_week.setdefault(row["week"].date(), [[0, 0] for _ in FITZPATRICK_TYPES])
        cells[row["skin_type"] - 1] = [row["right"], row["answered"]]
    week_rows = [ProgressWeek(start, [tuple(c) for c in cells], sum(c[0] for c in cells), sum(c[1] for c in cells))
                 for start, cells in sorted(by_week.items(), reverse=True)]
    totals = (QuizReview.objects.filter(user=user, skin_type__isnull=False).values("skin_type")
              .annotate(answered=Count("id"), right=Count("id", filter=Q(correct=True))))
    overall = [(0, 0) for _ in FITZPATRICK_TYPES]
    for row in totals:
        overall[row["skin_type"] - 1] = (row["right"], row["answered"])
    deck = QuizCard.objects.filter(user=user, image__in=Image.objects.public())
    upcoming = deck.filter(due__gt=at).order_by("due").values_list("due", flat=True).first()
    return LearnerProgress(week_rows, overall, deck.filter(due__lte=at).count(), deck.count(), upcoming)
