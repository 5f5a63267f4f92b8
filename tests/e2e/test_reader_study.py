"""A reader study in headless Chromium: staff create it and make a one-time link, a reader
answers every image through the link (and cannot answer one twice), staff read the results."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from playwright.sync_api import expect

from atlas.models import Condition
from atlas.services.ingestion import image_ingest
from generation.models import ReaderAnswer, ReaderStudy
from tests.conftest import approved
from tests.e2e.conftest import DESKTOP, PROVENANCE, lesion_photo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def study_catalogue(source):
    seed = 0
    for slug in ("melanoma", "psoriasis"):
        for origin in ("real", "synthetic"):
            for skin_type in (2, 5):
                seed += 1
                data, box = lesion_photo(skin_type, seed)
                # Studies draw approved synthetic images: the fixture approves them, as a reviewer would.
                approved(image_ingest(file=data, condition=Condition.objects.get(slug=slug), source=source, origin=origin,
                                      fitzpatrick_type=skin_type, regions=[box], enqueue_followups=False,
                                      provenance=PROVENANCE if origin == "synthetic" else None).image)


def test_staff_runs_a_reader_study_end_to_end(page, browser, live_server, study_catalogue, shot):
    staff = Client()
    staff.force_login(get_user_model().objects.create_user("curator", is_staff=True))
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": staff.cookies[settings.SESSION_COOKIE_NAME].value,
                               "url": live_server.url}])
    page.goto(reverse("generation:experiments:study_list"))

    page.get_by_label("Name").fill("Pilot realism study")
    page.get_by_label("Images per condition").fill("1")
    page.get_by_role("button", name="Create the study").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Pilot realism study")
    expect(page.get_by_text("Study created with 4 images.")).to_be_visible()
    page.get_by_label("One-time links").fill("1")
    page.get_by_role("button", name="Invite").click()
    link = page.locator("a.invite-link")
    expect(link).to_have_count(1)
    invite_url = link.get_attribute("href")
    shot(page, "staff-links")

    reader_context = browser.new_context(viewport=DESKTOP, base_url=live_server.url)
    reader = reader_context.new_page()
    reader.goto(invite_url)
    expect(reader.get_by_text("Image 1 of 4")).to_be_visible()
    image = reader.locator("figure.study-image img")
    reader.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle(), timeout=15_000)
    assert reader.evaluate("img => img.complete && img.naturalWidth", image.element_handle()) == 256
    assert not re.search(r"real|synth", image.get_attribute("src") + image.get_attribute("alt"), re.I)
    shot(reader, "reader-first-image")
    first_token = None
    for position in range(1, 5):
        expect(reader.get_by_text(f"Image {position} of 4")).to_be_visible()
        if position == 2:  # a stale tab sends image 1's answer again: refused, nothing changes
            reader.locator("input[name=item]").evaluate("(input, token) => input.value = token", first_token)
            reader.get_by_label("Synthetic (generated)").check()
            reader.get_by_label("No").check()
            reader.get_by_role("button", name="Answer and continue").click()
            expect(reader.get_by_text("already answered")).to_be_visible()
            expect(reader.get_by_text("Image 2 of 4")).to_be_visible()
        first_token = first_token or reader.locator("input[name=item]").input_value()
        reader.get_by_label("Real photograph").check()
        reader.get_by_label("Yes").check()
        reader.get_by_role("button", name="Answer and continue").click()
    expect(reader.get_by_role("heading", name="Thank you")).to_be_visible()
    assert ReaderAnswer.objects.count() == 4 and ReaderAnswer.objects.filter(judged_real=False).count() == 0
    # The reader cannot open the results.
    study = ReaderStudy.objects.get()
    results_url = reverse("generation:experiments:study_results", args=[study.public_id])
    assert reader.request.get(results_url, max_redirects=0).status in (302, 403)
    reader_context.close()

    page.get_by_role("link", name="Results").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Results")
    total = page.locator("tr.total")
    expect(total).to_contain_text("all conditions")
    expect(total.locator("td").nth(0)).to_have_text("1.00")  # TPR: every real image judged real
    expect(total.locator("td").nth(1)).to_have_text("1.00")  # FPR: every synthetic image judged real too
    figure = page.locator("figure img")
    expect(figure).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=figure.element_handle(), timeout=15_000)
    assert page.evaluate("img => img.complete && img.naturalWidth > 0", figure.element_handle())
    csv = page.request.get(page.get_by_role("link", name="Download CSV").get_attribute("href"))
    assert csv.status == 200 and csv.text().count("\n") == 5
    shot(page, "results")
