"""The quiz in headless Chromium, as a student meets it: nobody set it up; the feedback sits
beside the answered picture; the end screen lists the missed pictures; a signed-in student
sees a missed picture again in a later quiz and follows their accuracy per skin type."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from atlas.models import Condition
from atlas.services.ingestion import image_ingest
from generation.models import QuizCard, QuizRound, QuizRoundItem
from tests.conftest import approved
from tests.e2e.conftest import PROVENANCE, lesion_photo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def quiz_catalogue(source):
    """Melanoma, psoriasis and acne photographed on types II and V; an approved synthetic melanoma on VI."""
    seed = 0
    plan = [(slug, skin, "real") for slug in ("melanoma", "psoriasis", "acne") for skin in (2, 5)] + [("melanoma", 6, "synthetic")]
    for slug, skin, origin in plan:
        seed += 1
        data, box = lesion_photo(skin, seed)
        approved(image_ingest(file=data, condition=Condition.objects.get(slug=slug), source=source, origin=origin,
                              fitzpatrick_type=skin, regions=[box], enqueue_followups=False,
                              provenance=PROVENANCE if origin == "synthetic" else None).image)
    return len(plan)


def current_item(tab) -> QuizRoundItem:
    return QuizRoundItem.objects.select_related("condition").get(token=tab.locator("input[name=item]").input_value())


def answer(tab, item: QuizRoundItem, *, right: bool) -> None:
    slug = item.condition.slug if right else next(c for c in item.choices if c != item.condition.slug)
    tab.get_by_label(Condition.objects.get(slug=slug).name, exact=True).check()
    tab.get_by_role("button", name="Answer").click()


def test_a_student_learns_from_the_quiz_without_any_setup(page, quiz_catalogue, shot):
    total = quiz_catalogue
    page.goto(reverse("generation:experiments:quiz_list"))
    expect(page.get_by_text("No quiz is open")).to_have_count(0)
    page.get_by_role("button", name="Start a quiz").click()
    expect(page.get_by_text(f"Picture 1 of {total}")).to_be_visible()
    picture = page.locator("figure.quiz-picture img")
    src = picture.get_attribute("src")
    # The question text can show before the picture has loaded: wait for it, with a deadline.
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=picture.element_handle(), timeout=15_000)
    assert page.evaluate("img => img.complete && img.naturalWidth > 0", picture.element_handle())
    first = current_item(page)
    shot(page, "question")

    answer(page, first, right=False)
    feedback = page.locator(".quiz-feedback")
    expect(feedback.get_by_role("heading")).to_have_text(f"Not quite: this is {first.condition.name}.")
    expect(page.locator("figure.quiz-picture img")).to_have_attribute("src", src)  # the same picture, not the next
    learn = feedback.get_by_role("link", name=f"Learn about {first.condition.name}")
    assert learn.get_attribute("href") == reverse("atlas:condition_detail", args=[first.condition.slug])
    shot(page, "feedback")
    page.get_by_role("link", name="Next picture").click()
    expect(page.get_by_text(f"Picture 2 of {total}")).to_be_visible()
    expect(page.get_by_text("Not quite")).to_have_count(0)  # no feedback above the next picture

    for position in range(2, total + 1):
        item = current_item(page)
        if item.is_synthetic:
            expect(page.locator("figure.quiz-picture .badge-synthetic")).to_have_text("Synthetic")
        if position == 2:  # the same picture open in a second tab
            stale = page.context.new_page()
            stale.goto(page.url)
        answer(page, item, right=True)
        expect(page.locator(".quiz-feedback h2")).to_have_text(f"Right: this is {item.condition.name}.")
        if position == 2:  # the stale tab sends another answer: the first one counts, once
            answer(stale, item, right=False)
            expect(stale.get_by_text("your first answer counts")).to_be_visible()
            expect(stale.locator(".quiz-feedback h2")).to_have_text(f"Right: this is {item.condition.name}.")
            assert QuizRoundItem.objects.filter(chosen__isnull=False).count() == 2
            stale.close()
        page.locator("#quiz-next").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("Your score")
    expect(page.get_by_text(f"You got {total - 1} of {total}")).to_be_visible()
    missed = page.locator("li.missed")
    expect(missed).to_have_count(1)
    expect(missed.get_by_role("link", name=first.condition.name)).to_have_attribute(
        "href", reverse("atlas:condition_detail", args=[first.condition.slug]))
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=missed.locator("img").element_handle(), timeout=15_000)
    assert page.evaluate("img => img.complete && img.naturalWidth > 0", missed.locator("img").element_handle())
    shot(page, "end-screen")


def test_a_signed_in_student_sees_a_missed_picture_again_later(page, quiz_catalogue, shot):
    total = quiz_catalogue
    page.goto(reverse("generation:experiments:quiz_list"))
    page.get_by_role("link", name="make an account").click()
    page.get_by_label("Username").fill("student")
    page.get_by_label("Password", exact=True).fill("a-long-passphrase-42")
    page.get_by_label("Password confirmation").fill("a-long-passphrase-42")
    page.get_by_role("button", name="Make the account").click()
    expect(page.get_by_text("Signed in as student")).to_be_visible()

    page.get_by_role("button", name="Start a quiz").click()
    missed = None
    for _ in range(total):
        item = current_item(page)
        missed = missed or item
        answer(page, item, right=item != missed)
        page.locator("#quiz-next").click()
    expect(page.get_by_text("1 of these is in your review deck")).to_be_visible()

    # A later visit: the card's learning step (10 minutes) has passed.
    QuizCard.objects.update(due=timezone.now() - timedelta(minutes=1))
    page.goto(reverse("generation:experiments:quiz_list"))
    expect(page.get_by_text("1 picture you missed is due for review")).to_be_visible()
    page.get_by_role("button", name="Start a quiz").click()
    later = QuizRound.objects.order_by("-id").first()
    review = later.items.get(is_review=True)
    assert review.image_id == missed.image_id
    for _ in range(review.position - 1):
        answer(page, current_item(page), right=True)
        page.locator("#quiz-next").click()
    expect(page.get_by_text("review: you missed this picture before")).to_be_visible()
    shot(page, "review")

    page.goto(reverse("generation:experiments:quiz_progress"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Your quiz progress")
    all_time = page.locator("tr.total td")
    expect(all_time.nth(1)).to_contain_text("/")  # type II has answers
    shot(page, "progress")
