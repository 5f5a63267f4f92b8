"""Quiz pages: always open, feedback beside the answered picture, the end screen's missed list,
replays counted once, rounds bound to their browser or account, staff-made quizzes, accounts."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from atlas.models import Condition
from generation.experiments import reader_studies as studies
from generation.models import QuizCard, QuizReview, QuizRound, QuizRoundItem, ReaderAnswer, ReaderStudy
from tests.generation.test_quiz import ingest

pytestmark = pytest.mark.django_db

QUIZ = reverse("generation:experiments:quiz_list")
START = reverse("generation:experiments:quiz_start")


@pytest.fixture
def catalogue(source):
    """Three conditions on types II and V, real photographs, and one approved synthetic on VI.
    Psoriasis and eczema are look-alikes in the seeded teaching text; melanoma is neither's."""
    seed = 0
    for slug in ("melanoma", "psoriasis", "eczema"):
        for skin in (2, 5):
            seed += 1
            ingest(source, slug, skin, seed)
    ingest(source, "melanoma", 6, 99, synthetic=True)


def start(client: Client) -> QuizRound:
    response = client.post(START)
    round_ = QuizRound.objects.order_by("-id").first()
    assert response.status_code == 302 and response["Location"] == reverse("generation:experiments:quiz_round", args=[round_.public_id])
    return round_


def item_url(round_: QuizRound, position: int) -> str:
    return reverse("generation:experiments:quiz_round_item", args=[round_.public_id, position])


def wrong(item) -> str:
    return next(c for c in item.choices if c != item.condition.slug)


def test_the_quiz_is_open_without_any_staff_quiz(catalogue):
    assert not ReaderStudy.objects.exists()
    page = Client().get(QUIZ).content.decode()
    assert "No quiz is open" not in page and "Start a quiz" in page and f'action="{START}"' in page
    assert Client().get(START).status_code == 405  # starting is a POST: crawlers make no rounds


def test_an_empty_catalogue_says_so(db):
    client = Client()
    response = client.post(START, follow=True)
    assert response.status_code == 200 and "at least two conditions" in response.content.decode()
    assert not QuizRound.objects.exists()


def test_feedback_stays_with_the_picture_it_is_about(catalogue):
    client = Client()
    round_ = start(client)
    assert client.get(reverse("generation:experiments:quiz_round", args=[round_.public_id]))["Location"] == item_url(round_, 1)
    first = round_.items.get(position=1)
    question = client.get(item_url(round_, 1)).content.decode()
    picture = reverse("generation:experiments:quiz_picture", args=[first.token])
    assert f'src="{picture}"' in question and "Picture 1 of 7" in question
    assert first.condition.name not in question.split("<form")[0].split("<h1>")[1]  # nothing above the form gives it away

    response = client.post(item_url(round_, 1), {"item": first.token, "chosen": wrong(first)})
    assert response.status_code == 302 and response["Location"] == item_url(round_, 1)  # back to the same picture
    feedback = client.get(item_url(round_, 1)).content.decode()
    assert f'src="{picture}"' in feedback  # the answered picture, not the next one
    assert f"Not quite: this is {first.condition.name}." in feedback
    assert f'href="{reverse("atlas:condition_detail", args=[first.condition.slug])}"' in feedback
    assert f'href="{item_url(round_, 2)}"' in feedback and "Next picture" in feedback
    drill = reverse("atlas:condition_drill", args=[first.condition.slug]) + f"?type={first.skin_type}"
    assert f'href="{drill}"' in feedback  # practise the look-alikes on the same skin type
    confused = first.condition.lookalikes.filter(slug=wrong(first)).exists() or Condition.objects.get(
        slug=wrong(first)).lookalikes.filter(pk=first.condition_id).exists()
    assert ("are often confused" in feedback) == confused

    nxt = client.get(item_url(round_, 2)).content.decode()
    assert "Not quite" not in nxt and first.condition.name + "." not in nxt  # no feedback above the next picture
    second = round_.items.get(position=2)
    client.post(item_url(round_, 2), {"item": second.token, "chosen": second.condition.slug})
    assert f"Right: this is {second.condition.name}." in client.get(item_url(round_, 2)).content.decode()


def test_confusing_look_alikes_is_named_and_a_drill_offered(catalogue):
    client = Client()
    round_ = start(client)
    psoriasis = round_.items.filter(condition__slug="psoriasis").first()
    client.post(item_url(round_, psoriasis.position), {"item": psoriasis.token, "chosen": "eczema"})
    feedback = client.get(item_url(round_, psoriasis.position)).content.decode()
    assert "Eczema and Psoriasis are often confused." in feedback
    assert reverse("atlas:condition_drill", args=["psoriasis"]) + f"?type={psoriasis.skin_type}" in feedback
    melanoma = round_.items.filter(condition__slug="melanoma").first()
    client.post(item_url(round_, melanoma.position), {"item": melanoma.token, "chosen": "eczema"})
    assert "often confused" not in client.get(item_url(round_, melanoma.position)).content.decode()


def test_a_synthetic_quiz_picture_carries_its_badge(catalogue):
    client = Client()
    round_ = start(client)
    item = round_.items.get(is_synthetic=True)
    figure = picture_figure(client.get(item_url(round_, item.position)).content.decode())
    assert 'class="badge badge-synthetic">Synthetic' in figure and "synthetic image generated by a GAN" in figure
    real = round_.items.filter(is_synthetic=False).first()
    assert "badge-synthetic" not in picture_figure(client.get(item_url(round_, real.position)).content.decode())


def picture_figure(page: str) -> str:
    return re.search(r'<figure class="study-image quiz-picture.*?</figure>', page, re.S).group(0)


def test_the_end_screen_lists_the_missed_pictures(catalogue):
    client = Client()
    round_ = start(client)
    items = list(round_.items.select_related("condition"))
    missed = [i for i in items if i.position % 2]
    for item in items:
        client.post(item_url(round_, item.position), {"item": item.token, "chosen": wrong(item) if item in missed else item.condition.slug})
    end = client.get(reverse("generation:experiments:quiz_round", args=[round_.public_id]))
    page = end.content.decode()
    assert end.status_code == 200 and "Your score" in page and "Pictures to review" in page
    listed = re.findall(r'<li class="missed">(.*?)</li>', page, re.S)
    assert len(listed) == len(missed)
    for item, html in zip(missed, listed, strict=True):
        assert reverse("generation:experiments:quiz_picture", args=[item.token]) in html
        assert reverse("atlas:condition_detail", args=[item.condition.slug]) in html
    assert f"You got {len(items) - len(missed)} of {len(items)}" in page
    assert "Sign in" in page  # anonymous: told how to get the missed pictures back


def test_a_replayed_answer_counts_once(catalogue):
    client = Client()
    round_ = start(client)
    item = round_.items.get(position=1)
    for _ in range(2):
        response = client.post(item_url(round_, 1), {"item": item.token, "chosen": wrong(item)})
        assert response.status_code == 302 and response["Location"] == item_url(round_, 1)
    changed = client.post(item_url(round_, 1), {"item": item.token, "chosen": item.condition.slug}, follow=True)
    assert "your first answer counts" in changed.content.decode()
    item.refresh_from_db()
    assert item.chosen.slug == wrong(item) and QuizRoundItem.objects.filter(chosen__isnull=False).count() == 1


def test_tampered_input_is_refused_and_changes_nothing(catalogue):
    client = Client()
    round_ = start(client)
    item = round_.items.get(position=1)
    for data in ({"item": "forged", "chosen": item.condition.slug}, {"item": item.token, "chosen": "not-a-condition"},
                 {"item": item.token}, {"item": item.token, "chosen": next(
                     s for s in Condition.objects.values_list("slug", flat=True) if s not in item.choices)}):
        response = client.post(item_url(round_, 1), data, follow=True)
        assert response.status_code == 200 and 'role="alert"' in response.content.decode(), data
    assert not QuizRoundItem.objects.filter(chosen__isnull=False).exists()
    assert client.get(item_url(round_, 99)).status_code == 404
    assert client.get(reverse("generation:experiments:quiz_picture", args=["forged"])).status_code == 404

    stranger = Client()  # another browser (or a tampered session cookie): the round is not theirs
    stranger.cookies["sessionid"] = "forged-session-key"
    assert stranger.get(reverse("generation:experiments:quiz_round", args=[round_.public_id])).status_code == 404
    assert stranger.post(item_url(round_, 1), {"item": item.token, "chosen": item.condition.slug}).status_code == 404
    assert not QuizRoundItem.objects.filter(chosen__isnull=False).exists()


def test_a_signed_in_learner_gets_missed_pictures_back_and_a_progress_page(catalogue):
    learner = get_user_model().objects.create_user("student", password="a-long-passphrase")
    client = Client()
    client.force_login(learner)
    round_ = start(client)
    assert round_.user == learner
    for item in round_.items.all():
        client.post(item_url(round_, item.position), {"item": item.token, "chosen": wrong(item) if item.position == 1 else item.condition.slug})
    end = client.get(reverse("generation:experiments:quiz_round", args=[round_.public_id])).content.decode()
    assert "1 of these is in your review deck" in end
    assert QuizCard.objects.filter(user=learner).count() == 1 and QuizReview.objects.filter(user=learner).count() == 7

    progress = client.get(reverse("generation:experiments:quiz_progress"))
    page = progress.content.decode()
    assert progress.status_code == 200 and "Your quiz progress" in page and "1 missed picture in your review deck" in page
    assert re.search(r"All time</th>.*?<td>[^<]*</td>\s*<td>\d/\d", page, re.S)  # type II has answers
    assert "Sign out" in client.get(QUIZ).content.decode()

    anonymous = Client().get(reverse("generation:experiments:quiz_progress"))
    assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("accounts:login"))


def test_staff_quiz_feedback_end_screen_and_replay(catalogue):
    study = studies.reader_study_create(name="Staff quiz", kind=ReaderStudy.Kind.QUIZ, per_condition=1, seed=1)
    url = reverse("generation:experiments:quiz", args=[study.public_id])
    client = Client()
    assert "Staff quiz" in client.get(QUIZ).content.decode()
    total = study.items.count()
    for k in range(total):
        page = client.get(url).content.decode()
        token = re.search(r'name="item" value="([^"]+)"', page).group(1)
        item = study.items.get(token=token)
        chosen = wrong(item) if k == 0 else item.condition.slug
        response = client.post(url, {"item": token, "chosen": chosen})
        answer_url = reverse("generation:experiments:quiz_answer", args=[study.public_id, token])
        assert response["Location"] == answer_url
        feedback = client.get(answer_url).content.decode()
        assert reverse("generation:experiments:item_image", args=[token]) in feedback
        assert ("Not quite" if k == 0 else "Right") in feedback
        if k == 0:
            assert client.post(url, {"item": token, "chosen": chosen})["Location"] == answer_url  # replay: counted once
            first_token, first_item = token, item
    assert ReaderAnswer.objects.count() == total
    end = client.get(url).content.decode()
    listed = re.findall(r'<li class="missed">(.*?)</li>', end, re.S)
    assert len(listed) == 1 and reverse("generation:experiments:item_image", args=[first_token]) in listed[0]
    assert reverse("atlas:condition_detail", args=[first_item.condition.slug]) in listed[0]
    assert Client().get(reverse("generation:experiments:quiz_answer", args=[study.public_id, first_token])).status_code == 404


def test_a_learner_signs_up_and_signs_in(db):
    client = Client()
    response = client.post(reverse("accounts:signup"), {"username": "newstudent", "password1": "a-long-passphrase-42",
                                                        "password2": "a-long-passphrase-42", "next": QUIZ})
    assert response.status_code == 302 and response["Location"] == QUIZ
    assert "Signed in as newstudent" in client.get(QUIZ).content.decode()
    client.post(reverse("accounts:logout"))
    assert "Signed in as" not in client.get(QUIZ).content.decode()
    bad = client.post(reverse("accounts:signup"), {"username": "x", "password1": "123", "password2": "123", "next": "https://evil.example/"})
    assert bad.status_code == 200 and get_user_model().objects.count() == 1 and "evil.example" not in bad.content.decode()
    signed = client.post(reverse("accounts:login"), {"username": "newstudent", "password": "a-long-passphrase-42"})
    assert signed.status_code == 302 and signed["Location"] == QUIZ
