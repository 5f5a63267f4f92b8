"""The teaching quiz's services: the standing quiz's balanced draw, answers counted once, rounds
bound to their learner, FSRS scheduling of missed images, accuracy by skin type over time."""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from atlas.models import Condition, Image
from atlas.services.ingestion import image_ingest
from generation.experiments import quiz
from generation.experiments import reader_studies as studies
from generation.models import QuizCard, QuizReview, QuizRound, QuizRoundItem, ReaderAnswer, ReaderStudy
from tests.conftest import approved, make_image_bytes

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday


def ingest(source, slug: str, skin: int | None, seed: int, *, synthetic: bool = False, approve: bool = True) -> Image:
    image = image_ingest(
        file=make_image_bytes(40, 40, seed=seed, fmt="PNG" if synthetic else "JPEG"),
        condition=Condition.objects.get(slug=slug), source=source, fitzpatrick_type=skin,
        origin=Image.Origin.SYNTHETIC if synthetic else Image.Origin.REAL, enqueue_followups=False,
        provenance={"model": "DermGAN", "checkpoint": "test@1", "seed": seed} if synthetic else None,
    ).image
    return approved(image) if approve else image


@pytest.fixture
def skewed(source):
    """Type II has 8 real images; I, III, IV, V two each; VI has no photograph, one approved
    synthetic and one pending; type II also has an approved synthetic; two of unknown type."""
    seeds = iter(range(1, 1000))
    slugs = ["melanoma", "psoriasis", "acne", "vitiligo", "tinea", "eczema", "urticaria"]
    made = {"real": [], "synthetic_vi": None, "pending_vi": None, "synthetic_ii": None, "unknown": []}
    for k in range(8):
        made["real"].append(ingest(source, slugs[k % len(slugs)], 2, next(seeds)))
    for skin in (1, 3, 4, 5):
        for k in range(2):
            made["real"].append(ingest(source, slugs[(skin + k) % len(slugs)], skin, next(seeds)))
    made["synthetic_vi"] = ingest(source, "melanoma", 6, next(seeds), synthetic=True)
    made["pending_vi"] = ingest(source, "psoriasis", 6, next(seeds), synthetic=True, approve=False)
    made["synthetic_ii"] = ingest(source, "acne", 2, next(seeds), synthetic=True)
    made["unknown"] = [ingest(source, "melanoma", None, next(seeds)) for _ in range(2)]
    return made


@pytest.fixture
def learner(db):
    return get_user_model().objects.create_user("student", password="a-long-passphrase")


def test_standing_quiz_is_balanced_by_skin_type_where_the_catalogue_allows(skewed):
    for seed in range(5):
        picks = quiz.standing_quiz_draw(size=12, rng=random.Random(seed))
        by_type = Counter(image.fitzpatrick_type for image in picks)
        # Two of each type; VI has one public image, so its place goes to type II (the only one left).
        assert by_type == {1: 2, 2: 3, 3: 2, 4: 2, 5: 2, 6: 1}, seed
        ids = {image.id for image in picks}
        assert len(ids) == 12
        assert skewed["synthetic_vi"].id in ids  # synthetic fills a type with no photograph ...
        assert skewed["synthetic_ii"].id not in ids  # ... never one whose photographs are not used up
        assert skewed["pending_vi"].id not in ids  # pending review: not public, never in a quiz
        assert not ids & {image.id for image in skewed["unknown"]}


def test_standing_quiz_spreads_conditions_and_takes_what_a_small_catalogue_has(source):
    for k, slug in enumerate(["melanoma", "psoriasis", "acne"]):
        ingest(source, slug, 3, k + 1)
        ingest(source, slug, 3, k + 10)
    picks = quiz.standing_quiz_draw(size=3, rng=random.Random(0))
    assert len({image.condition_id for image in picks}) == 3  # three picks, three conditions
    assert len(quiz.standing_quiz_draw(size=12, rng=random.Random(0))) == 6  # everything there is


def test_a_round_offers_four_conditions_with_the_right_one(skewed):
    round_ = quiz.quiz_round_start(session_key="s1", seed=3)
    items = list(round_.items.select_related("condition"))
    assert [i.position for i in items] == list(range(1, 13))
    offered = set(Image.objects.public().values_list("condition__slug", flat=True))
    with_lookalikes = 0
    for item in items:
        assert len(item.choices) == 4 == len(set(item.choices)) and item.condition.slug in item.choices
        assert item.skin_type == item.image.fitzpatrick_type and item.is_synthetic == item.image.is_synthetic
        assert set(item.choices) <= offered  # every choice has pictures in the atlas to learn from
        listed = {c.slug for c in item.condition.lookalikes.all()} & offered
        assert len(listed & set(item.choices)) >= min(quiz.LOOKALIKE_CHOICES, len(listed))  # look-alikes as distractors
        with_lookalikes += bool(listed)
    assert with_lookalikes  # the seeded teaching text pairs some of these conditions


def test_a_round_needs_two_conditions_and_a_learner(source):
    with pytest.raises(quiz.QuizError, match="two conditions"):
        quiz.quiz_round_start(session_key="s1")
    ingest(source, "melanoma", 2, 1)
    ingest(source, "acne", 3, 2)
    with pytest.raises(quiz.QuizError, match="session"):
        quiz.quiz_round_start()
    assert QuizRound.objects.count() == 0


def _answer(round_, item, *, right: bool, now=None):
    chosen = item.condition.slug if right else next(c for c in item.choices if c != item.condition.slug)
    return quiz.quiz_answer_record(round_=round_, item_token=item.token, chosen=chosen, now=now)


def test_an_answer_sent_twice_counts_once_and_cannot_be_changed(skewed, learner):
    round_ = quiz.quiz_round_start(user=learner, seed=1, now=T0)
    item = round_.items.first()
    first = _answer(round_, item, right=False, now=T0)
    again = _answer(round_, item, right=False, now=T0 + timedelta(seconds=1))
    changed = _answer(round_, item, right=True, now=T0 + timedelta(seconds=2))
    assert first.counted and not again.counted and not again.refused_change
    assert not changed.counted and changed.refused_change and not changed.item.is_correct
    assert QuizReview.objects.count() == 1 and QuizCard.objects.get().reviews == 1
    assert QuizRoundItem.objects.get(pk=item.pk).answered_at == T0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_racing_answers_to_one_picture_count_once(skewed, learner):
    round_ = quiz.quiz_round_start(user=learner, seed=1, now=T0)
    item = round_.items.first()
    barrier, counted, errors = threading.Barrier(2), [], []

    def send() -> None:
        try:
            barrier.wait(timeout=30)
            counted.append(_answer(round_, item, right=False, now=T0).counted)
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and sorted(counted) == [False, True]
    assert QuizReview.objects.count() == 1 and QuizCard.objects.get().reviews == 1


def test_bad_answers_are_refused_and_change_nothing(skewed):
    round_ = quiz.quiz_round_start(session_key="s1", seed=1)
    other = quiz.quiz_round_start(session_key="s2", seed=2)
    item = round_.items.first()
    with pytest.raises(quiz.QuizError, match="not part of this quiz"):
        quiz.quiz_answer_record(round_=round_, item_token="forged-token", chosen=item.condition.slug)
    with pytest.raises(quiz.QuizError, match="not part of this quiz"):  # another round's picture
        quiz.quiz_answer_record(round_=round_, item_token=other.items.first().token, chosen=item.condition.slug)
    outsider = next(s for s in Condition.objects.values_list("slug", flat=True) if s not in item.choices)
    with pytest.raises(quiz.QuizError, match="offered"):
        quiz.quiz_answer_record(round_=round_, item_token=item.token, chosen=outsider)
    assert not QuizRoundItem.objects.filter(chosen__isnull=False).exists() and not QuizReview.objects.exists()


def test_a_round_belongs_to_its_session_or_account(skewed, learner):
    anonymous = quiz.quiz_round_start(session_key="mine", seed=1)
    owned = quiz.quiz_round_start(user=learner, seed=1)
    assert quiz.quiz_round_for(public_id=anonymous.public_id, session_key="mine") == anonymous
    assert quiz.quiz_round_for(public_id=owned.public_id, user=learner) == owned
    other = get_user_model().objects.create_user("someone-else")
    for kwargs in ({"public_id": anonymous.public_id, "session_key": "tampered"},
                   {"public_id": anonymous.public_id, "user": learner},
                   {"public_id": owned.public_id, "user": other},
                   {"public_id": owned.public_id, "session_key": "mine"},
                   {"public_id": "8e0c7c1e-0000-4000-8000-000000000000", "session_key": "mine"}):
        with pytest.raises(quiz.QuizError, match="not yours"):
            quiz.quiz_round_for(**kwargs)


def test_anonymous_rounds_keep_no_deck_or_history(skewed):
    round_ = quiz.quiz_round_start(session_key="s1", seed=1)
    for item in round_.items.all():
        _answer(round_, item, right=False)
    assert not QuizCard.objects.exists() and not QuizReview.objects.exists()
    round_.refresh_from_db()
    assert round_.finished_at is not None
    summary = quiz.quiz_round_summary(round_=round_)
    assert summary.answered == 12 and summary.correct == 0 and len(summary.missed) == 12 and summary.in_deck == 0


def test_a_missed_image_comes_back_when_due_and_a_right_one_much_later(skewed, learner):
    round_ = quiz.quiz_round_start(user=learner, seed=5, now=T0)
    missed, right = list(round_.items.all()[:2])
    _answer(round_, missed, right=False, now=T0)
    _answer(round_, right, right=True, now=T0)
    card = QuizCard.objects.get()  # only the missed image is in the deck
    assert card.image_id == missed.image_id and card.lapses == 1
    assert T0 < card.due <= T0 + timedelta(hours=1)  # due again soon: the next round, not this one

    soon = quiz.quiz_round_start(user=learner, seed=6, now=T0 + timedelta(minutes=5))
    assert not soon.items.filter(image_id=missed.image_id).exists()  # not due yet: not even as a new picture
    later = quiz.quiz_round_start(user=learner, seed=7, now=T0 + timedelta(minutes=11))
    review = later.items.get(image_id=missed.image_id)
    assert review.is_review and later.items.filter(is_review=True).count() == 1

    _answer(later, review, right=True, now=T0 + timedelta(minutes=12))
    card.refresh_from_db()
    assert card.due >= T0 + timedelta(minutes=12) + timedelta(days=1)  # answered right: much later
    assert card.reviews == 2 and card.lapses == 1
    assert quiz.quiz_due_cards(user=learner, now=T0 + timedelta(hours=2)).count() == 0

    again = quiz.quiz_round_start(user=learner, seed=8, now=card.due + timedelta(minutes=1))
    item = again.items.get(image_id=missed.image_id)
    _answer(again, item, right=False, now=card.due + timedelta(minutes=2))
    card.refresh_from_db()
    last = datetime.fromisoformat(card.card["last_review"])
    assert card.lapses == 2 and last < card.due <= last + timedelta(hours=1)  # missed again: back to a short step


def test_due_reviews_fill_at_most_half_a_round(skewed, learner):
    first = quiz.quiz_round_start(user=learner, seed=1, now=T0)
    for item in first.items.all():
        _answer(first, item, right=False, now=T0)
    assert QuizCard.objects.filter(user=learner).count() == 12
    later = quiz.quiz_round_start(user=learner, seed=2, now=T0 + timedelta(hours=1))
    assert later.items.filter(is_review=True).count() == quiz.REVIEW_SHARE
    assert later.items.filter(is_review=False).count() == 12 - quiz.REVIEW_SHARE


def test_hidden_images_leave_the_deck(skewed, learner):
    round_ = quiz.quiz_round_start(user=learner, seed=1, now=T0)
    item = round_.items.first()
    _answer(round_, item, right=False, now=T0)
    Image.objects.filter(pk=item.image_id).update(review_state=Image.ReviewState.REJECTED, origin=Image.Origin.SYNTHETIC)
    assert quiz.quiz_due_cards(user=learner, now=T0 + timedelta(days=1)).count() == 0


def test_progress_is_accuracy_per_skin_type_per_week(skewed, learner):
    image_ii, image_v = Image.objects.filter(fitzpatrick_type=2).first(), Image.objects.filter(fitzpatrick_type=5).first()
    for at, image, correct in [(T0, image_ii, True), (T0, image_ii, False), (T0, image_v, False),
                               (T0 + timedelta(days=7), image_v, True), (T0 + timedelta(days=8), image_v, True)]:
        quiz.learner_review_record(user=learner, image=image, skin_type=image.fitzpatrick_type, correct=correct, now=at)
    progress = quiz.learner_progress(user=learner, now=T0 + timedelta(days=9))
    assert [w.start for w in progress.weeks] == [(T0 + timedelta(days=7)).date(), T0.date()]
    latest, first = progress.weeks
    assert latest.cells[4] == (2, 2) and latest.answered == 2
    assert first.cells[1] == (1, 2) and first.cells[4] == (0, 1) and (first.right, first.answered) == (1, 3)
    assert progress.overall[1] == (1, 2) and progress.overall[4] == (2, 3) and progress.overall[0] == (0, 0)
    assert progress.in_deck == 2  # both images were missed once
    someone = get_user_model().objects.create_user("other")
    assert quiz.learner_progress(user=someone).weeks == []


def test_a_staff_quiz_feeds_a_signed_in_learners_deck_once(skewed, learner):
    study = studies.reader_study_create(name="Staff quiz", kind=ReaderStudy.Kind.QUIZ, per_condition=1, seed=1)
    invite = studies.study_invite_for(study=study, session_key="s1", create=True)
    item = studies.study_next_item(invite=invite)
    chosen = next(c for c in item.choices if c != item.condition.slug)
    first = quiz.staff_quiz_answer_record(invite=invite, item_token=item.token, chosen=chosen, user=learner)
    again = quiz.staff_quiz_answer_record(invite=invite, item_token=item.token, chosen=item.condition.slug, user=learner)
    assert first.counted and not again.counted and again.refused_change and again.answer.chosen.slug == chosen
    assert ReaderAnswer.objects.count() == 1 and QuizReview.objects.count() == 1
    assert QuizCard.objects.get(user=learner).image_id == item.image_id
    with pytest.raises(quiz.QuizError):
        quiz.staff_quiz_answer_record(invite=invite, item_token="forged", chosen=chosen, user=learner)
    summary = quiz.staff_quiz_summary(invite=invite, user=learner)
    assert summary.answered == 1 and [m.token for m in summary.missed] == [item.token] and summary.in_deck == 1
