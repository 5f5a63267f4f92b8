"""Teaching pages in headless Chromium: a condition's strip across skin tones and the look-alike drill."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from atlas.models import Condition, Image
from atlas.services.ingestion import image_ingest
from search import indexing
from tests.e2e.conftest import PHONE, lesion_photo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def tone_v(atlas, source):
    """The e2e atlas plus melanoma, a mole and a seborrheic keratosis on type V, all indexed: on V,
    melanoma has two listed look-alikes (mole, SK) and tinea (twice) for the embedding to find."""
    made = {}
    for seed, slug in enumerate(("melanoma", "melanocytic-nevus", "sk-isk"), start=40):
        data, box = lesion_photo(5, seed)
        made[slug] = image_ingest(
            file=data, condition=Condition.objects.get(slug=slug), source=source, fitzpatrick_type=5,
            fitzpatrick_label_source="dermatologist", regions=[box], enqueue_followups=False,
        ).image  # fmt: skip
    indexing.index_rebuild()
    return made


def test_a_condition_page_shows_one_image_per_skin_type_and_links_to_each_cell(page, atlas, shot):
    page.goto("/conditions/eczema/")
    strip = page.locator("[data-tone-strip] li")
    expect(strip).to_have_count(6)
    expect(page.locator("[data-tone-strip] .tone-strip-gap")).to_have_count(5)  # eczema: type II only
    expect(strip.nth(1).locator("img")).to_be_visible()
    expect(page.get_by_role("heading", name="When to see a clinician")).to_be_visible()
    expect(page.locator(".educational-note")).to_contain_text("not a diagnosis")

    page.goto("/conditions/melanoma/")
    synthetic_vi = page.locator('[data-tone-strip] li[data-skin-type="6"]')
    expect(synthetic_vi.locator(".badge-synthetic")).to_have_text(re.compile("synthetic", re.I))
    expect(synthetic_vi.locator("img")).to_have_attribute("alt", re.compile("not a photograph"))
    expect(page.locator('[data-tone-strip] li[data-skin-type="5"] .tone-strip-gap')).to_have_text("No image yet")
    shot(page, "strip")
    synthetic_vi.get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"/search/\?condition=melanoma&fitzpatrick=6$"))
    expect(page.locator(".results figure.thumb.is-synthetic")).to_have_count(1)

    page.set_viewport_size(PHONE)  # the strip wraps to two rows on a phone, no sideways scrolling
    page.goto("/conditions/melanoma/")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_a_student_drills_melanoma_against_its_lookalikes_on_the_same_tone(page, tone_v, shot):
    answer = str(tone_v["melanoma"].public_id)
    page.goto("/conditions/melanoma/")
    page.get_by_role("link", name=re.compile("Practise: which of four is Melanoma")).click()
    # Only type V holds look-alikes of melanoma, so the drill is drawn there.
    expect(page.get_by_role("heading", level=1)).to_have_text("Which of these 4 is Melanoma?")
    expect(page.locator(".lead")).to_contain_text("type V skin")
    choices = page.locator("button.drill-choice")
    expect(choices).to_have_count(4)
    values = [choices.nth(i).get_attribute("value") for i in range(4)]
    assert answer in values
    shown = Image.objects.filter(public_id__in=values)
    assert {i.condition.slug for i in shown} == {"melanoma", "melanocytic-nevus", "sk-isk", "tinea"}
    assert {i.fitzpatrick_type for i in shown} == {5}
    expect(page.locator(".drill")).not_to_contain_text("Melanocytic nevus")  # names stay hidden until answered
    shot(page, "drill")

    page.locator(f'button.drill-choice[value="{answer}"]').focus()
    page.keyboard.press("Enter")  # answered from the keyboard
    expect(page.locator(".drill-feedback")).to_have_text("Right: that is Melanoma.")
    expect(page.locator('.drill-basis[data-basis="listed"]')).to_have_count(2)
    expect(page.locator('.drill-basis[data-basis="similar"]')).to_have_text("look-alike found by the search model")
    expect(page.locator(".drill-option.is-answer")).to_contain_text("Melanoma")
    shot(page, "drill-right")

    page.get_by_role("link", name=re.compile("Next drill")).click()
    wrong = next(v for v in (page.locator("button.drill-choice").nth(i).get_attribute("value") for i in range(4)) if v != answer)
    page.locator(f'button.drill-choice[value="{wrong}"]').click()
    expect(page.locator(".drill-feedback")).to_contain_text("Not quite: you chose")
    expect(page.locator(".drill-option.is-answer figure > a")).to_have_attribute("href", f"/images/{answer}/")
    shot(page, "drill-wrong")


def test_an_image_page_shows_what_it_is_often_confused_with(page, tone_v, shot):
    page.goto(f"/images/{tone_v['melanoma'].public_id}/")
    section = page.locator("section.lookalikes")
    expect(section.get_by_role("heading", name="Often confused with")).to_be_visible()
    expect(section.locator('li[data-basis^="listed"]')).to_have_count(2)
    expect(section.locator('li[data-basis="similar"] .thumb-condition')).to_have_text(["Tinea"])
    shot(page, "often-confused-with")
    section.get_by_role("link", name=re.compile("Drill: which of four is Melanoma on type V skin")).click()
    expect(page.locator("button.drill-choice")).to_have_count(4)
