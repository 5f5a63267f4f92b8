"""What a visitor does on the atlas, in headless Chromium: search, open, toggle, upload, compare."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from atlas.models import Image
from tests.e2e.conftest import PHONE, assert_synthetic_thumbnails_badged

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_search_a_condition_by_its_lay_name_and_a_skin_tone(page, atlas, shot):
    page.goto("/search/")
    picker = page.get_by_role("combobox", name="Condition")
    picker.fill("ringw")
    option = page.get_by_role("option", name=re.compile("Tinea"))
    expect(option).to_be_visible()
    expect(option).to_contain_text("ringworm")
    shot(page, "typeahead")
    picker.press("ArrowDown")
    picker.press("Enter")
    expect(picker).to_have_value("Tinea")
    page.get_by_label("Type V", exact=True).check()
    page.get_by_label("Type VI", exact=True).check()
    page.get_by_role("button", name="Search", exact=True).click()

    expect(page).to_have_url(re.compile(r"condition=Tinea&fitzpatrick=5&fitzpatrick=6"))
    results = page.locator(".results figure.thumb")
    expect(results).to_have_count(3)
    for index in range(3):
        caption = results.nth(index).locator("figcaption")
        expect(caption).to_contain_text("Tinea")
        expect(caption).to_contain_text(re.compile(r"Type VI?\b"))
    shot(page, "results")


def test_text_search_shows_badged_synthetic_results(page, indexed_atlas, shot):
    page.goto("/search/")
    page.get_by_label("Search words").fill("melanoma on dark skin")
    page.get_by_label("Search words").press("Enter")
    expect(page.locator(".interpreted")).to_contain_text("melanoma")
    # the words rank melanoma first (a boost): its five images lead, the other conditions follow
    thumbs = page.locator(".results figure.thumb")
    for index in range(5):
        expect(thumbs.nth(index).locator(".thumb-condition")).to_have_text("Melanoma")
    expect(thumbs.nth(5).locator(".thumb-condition")).not_to_have_text("Melanoma")
    assert assert_synthetic_thumbnails_badged(page) == 1
    # skin-tone words rank the dark-skin (VI) image first
    expect(page.locator(".results figure.thumb").first.locator("figcaption")).to_contain_text("Type VI")
    shot(page, "melanoma-dark-skin")


def test_open_a_detail_page_and_toggle_the_lesion_boxes(page, indexed_atlas, shot):
    page.goto("/search/?condition=melanoma&origin=synthetic")
    assert assert_synthetic_thumbnails_badged(page) == 1
    page.locator(".results figure.thumb a").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Melanoma")
    expect(page.locator(".synthetic-banner")).to_contain_text("not a photograph")
    provenance = page.locator("dl.provenance")
    for text in ("DermGAN", "e2e-gen.pt", "Seed", "Semantic map parameters", "box_scale"):
        expect(provenance).to_contain_text(text)

    overlay = page.locator("#roi-overlay")
    toggle = page.get_by_role("button", name="Show lesion boxes")
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(overlay).to_be_visible()
    toggle.click()
    expect(overlay).to_be_hidden()
    expect(toggle).to_have_attribute("aria-pressed", "false")
    shot(page, "boxes-hidden")
    toggle.focus()
    page.keyboard.press("Enter")  # the toggle works from the keyboard too
    expect(overlay).to_be_visible()
    expect(toggle).to_have_attribute("aria-pressed", "true")

    expect(page.locator("#similar-heading + ul figure.thumb")).to_have_count(8)
    assert assert_synthetic_thumbnails_badged(page) <= 1
    shot(page, "detail")


def test_upload_a_photo_and_see_similar_images(page, indexed_atlas, shot, media_root):
    target = indexed_atlas["eczema-2-real-13"]
    photo = target.file.read()
    files_before = sorted(p for p in media_root.rglob("*") if p.is_file())
    rows_before = Image.objects.count()

    page.goto("/search/")
    page.get_by_text("Search by photo").click()
    page.get_by_label("Your photo").set_input_files({"name": "my-arm.png", "mimeType": "image/png", "buffer": photo})
    page.get_by_role("button", name="Find similar images").click()

    expect(page.get_by_role("heading", name="Images like your photo")).to_be_visible()
    expect(page.locator(".query-photo img")).to_be_visible()
    first = page.locator(".results figure.thumb a").first
    expect(first).to_have_attribute("href", f"/images/{target.public_id}/")  # the same pixels rank first
    assert_synthetic_thumbnails_badged(page)
    shot(page, "photo-results")
    assert Image.objects.count() == rows_before
    assert sorted(p for p in media_root.rglob("*") if p.is_file()) == files_before


def test_compare_a_condition_across_skin_tones(page, atlas, shot):
    page.goto("/conditions/melanoma/")
    grid = page.locator("table.across")
    expect(grid.locator("thead th")).to_have_count(7)  # I-VI and unknown
    expect(grid.locator("tbody td.gap")).to_have_count(2)  # type V: no real, no synthetic
    synthetic_vi = grid.get_by_role("link", name=re.compile("synthetic images, type VI"))
    expect(synthetic_vi).to_have_text(re.compile(r"^1"))
    shot(page, "across")
    grid.get_by_role("link", name=re.compile(r"real images, type II$")).click()
    expect(page).to_have_url(re.compile(r"condition=melanoma&fitzpatrick=2&origin=real"))
    expect(page.locator(".results figure.thumb")).to_have_count(1)
    expect(page.locator(".results figcaption")).to_contain_text("Type II")


def test_phone_width_keyboard_and_coverage(page, atlas, shot):
    page.set_viewport_size(PHONE)
    page.goto("/search/?condition=tinea")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    expect(page.get_by_text("For education, not diagnosis.").first).to_be_visible()
    shot(page, "phone-search")

    assert_labelled(page)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Coverage").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Coverage")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # the table scrolls, not the page
    shot(page, "phone-coverage")
    assert_labelled(page)


def assert_labelled(tab) -> None:
    """Every image has alt text and every visible form control an accessible name."""
    unnamed = tab.evaluate(
        """() => {
            const missingAlt = [...document.images].filter(i => !i.hasAttribute("alt")).map(i => i.src);
            const controls = [...document.querySelectorAll("input, select, textarea, button")]
                .filter(c => c.type !== "hidden" && !c.hidden && c.offsetParent !== null);
            const unlabelled = controls.filter(c => !(c.labels && c.labels.length) && !c.getAttribute("aria-label")
                && !c.getAttribute("aria-labelledby") && !(c.tagName === "BUTTON" && c.textContent.trim()));
            return missingAlt.concat(unlabelled.map(c => c.outerHTML.slice(0, 80)));
        }"""
    )
    assert unnamed == []
