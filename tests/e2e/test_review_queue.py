"""The review queue in headless Chromium, driven by the keyboard only: a reviewer approves one
image with `a`, selects two with `j`/`k`/`x` and rejects them with `r`, a reason and Enter; the
public sees the approved image and never the rejected ones."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse
from playwright.sync_api import expect

from atlas.models import Condition, Image
from atlas.services.ingestion import image_ingest
from tests.e2e.conftest import DESKTOP, PROVENANCE, lesion_photo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def queue(source):
    melanoma = Condition.objects.get(slug="melanoma")
    for seed, skin in enumerate((4, 5, 6), start=1):
        data, box = lesion_photo(skin, seed)
        image_ingest(file=data, condition=melanoma, source=source, fitzpatrick_type=skin, regions=[box],
                     fitzpatrick_label_source="dermatologist", enqueue_followups=False)
    pending = []
    for seed in (11, 12, 13):
        data, box = lesion_photo(6, seed)
        provenance = {**PROVENANCE, "gates": {"tone": {"passed": True, "measured": 6}, "condition": {"passed": True, "rank": 1}}}
        pending.append(image_ingest(file=data, condition=melanoma, source=source, origin="synthetic", fitzpatrick_type=6,
                                    regions=[box], provenance=provenance, enqueue_followups=False).image)
    return pending


def _log_in_reviewer(page, live_server) -> None:
    user = User.objects.create_user("rita", is_staff=True)
    user.groups.add(Group.objects.get(name="Reviewers"))
    browser_session = Client()
    browser_session.force_login(user)
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME,
                               "value": browser_session.cookies[settings.SESSION_COOKIE_NAME].value, "url": live_server.url}])


def test_a_reviewer_works_the_queue_by_keyboard(page, browser, live_server, queue, shot):
    first, second, third = queue
    _log_in_reviewer(page, live_server)
    page.goto(reverse("generation:review_queue"))
    cards = page.locator("[data-review-card]")
    expect(cards).to_have_count(3)
    expect(cards.first).to_have_class("review-card is-current")
    expect(cards.first.locator(".review-references img")).to_have_count(2)  # real melanoma on V and VI, not IV
    expect(cards.first.locator(".gate-pass")).to_have_count(2)
    shot(page, "queue")

    page.keyboard.press("a")  # approve the highlighted (oldest) image
    expect(page.locator("[data-review-message=success]")).to_have_text("1 image approved.")
    expect(cards).to_have_count(2)

    page.keyboard.press("j")
    expect(cards.nth(1)).to_have_attribute("aria-current", "true")
    page.keyboard.press("x")
    page.keyboard.press("k")
    page.keyboard.press("x")
    expect(page.locator("[data-review-select]:checked")).to_have_count(2)
    page.keyboard.press("r")
    expect(page.locator("#review-reason")).to_be_focused()
    page.keyboard.type("no melanoma visible")
    page.keyboard.press("Enter")
    expect(page.locator("[data-review-message=success]")).to_have_text("2 images rejected.")
    expect(page.locator("[data-review-empty]")).to_be_visible()
    shot(page, "done")

    states = {image.pk: Image.objects.get(pk=image.pk) for image in queue}
    assert states[first.pk].review_state == "approved" and states[first.pk].provenance["review"]["reviewer"] == "rita"
    for image in (second, third):
        assert states[image.pk].review_state == "rejected"
        assert states[image.pk].provenance["review"]["reason"] == "no melanoma visible"

    public = browser.new_context(viewport=DESKTOP, base_url=live_server.url).new_page()
    assert public.goto(reverse("atlas:image_detail", args=[first.public_id])).status == 200
    for image in (second, third):
        assert public.goto(reverse("atlas:image_detail", args=[image.public_id])).status == 404
    assert public.goto(reverse("generation:review_queue")).url.split("?")[0].endswith("/login/")  # not for the public
    public.context.close()


def test_a_key_pressed_in_the_reason_field_types_instead_of_deciding(page, live_server, queue):
    _log_in_reviewer(page, live_server)
    page.goto(reverse("generation:review_queue"))
    page.keyboard.press("r")
    page.keyboard.type("a j k x")
    expect(page.locator("#review-reason")).to_have_value("a j k x")
    page.keyboard.press("Escape")
    expect(page.locator("[data-review-card]").first).to_be_focused()
    assert Image.objects.filter(review_state="pending").count() == 3
