"""Issue 13's walk-through in headless Chromium: staff fill melanoma on V-VI from the Fill gaps
page; the automatic gates judge every sample (redrawing failures); the public pages show nothing
new; the review queue shows each image with its gate results; once approved, an image is public.

Real small models: the gap tests' tiny generator, an untrained real-only classifier and the
report's encoder trained for 5 steps with its index of real crops (prepare_gates). The tiny
generator's samples are nearly flat, so the tone gate (which needs measurable skin) is left out
and the flatness threshold sits inside their range, so some samples may fail and be redrawn."""

from __future__ import annotations

import re

import pytest
from django.conf import settings as live_settings
from django.contrib.auth.models import Group, User
from django.test import Client
from playwright.sync_api import expect

from atlas.models import Condition, Image
from atlas.services.ingestion import image_ingest
from generation import classifier as clf_mod
from generation import quality
from generation.gating import gates_prepare
from generation.models import GenerationJob
from generation.services import catalogue_vocabulary
from tests.e2e.conftest import assert_synthetic_thumbnails_badged, lesion_photo
from tests.generation.gaps_helpers import tiny_checkpoint as tiny_gan

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def gated_atlas(source, settings, tmp_path, tmp_path_factory, monkeypatch):
    settings.GAN_ROOT = tmp_path / "gan"
    settings.GAN_DEVICE = "cpu"
    settings.GAP_FILL_BATCH_SIZE = 4
    settings.GAP_FILL_DRAWS_PER_IMAGE = 8
    settings.ATLAS_GATES = ["condition", "copy", "defects"]
    settings.ATLAS_GATE_CONDITION_TOP_K = 100  # an untrained classifier: rank only, never the reason to fail
    settings.ATLAS_GATE_DEFECT_MIN_CONTRAST = 0.18  # inside the tiny generator's range (tests/generation/test_gaps_gates.py)
    melanoma = Condition.objects.get(slug="melanoma")
    for seed, skin in enumerate((1, 2, 3, 4, 4), start=1):
        data, box = lesion_photo(skin, seed)
        image_ingest(file=data, condition=melanoma, source=source, fitzpatrick_type=skin, regions=[box],
                     fitzpatrick_label_source="dermatologist", enqueue_followups=False)
    tiny_gan(tmp_path_factory.getbasetemp())
    vocabulary = catalogue_vocabulary()
    clf_mod.save(clf_mod.ConditionClassifier(clf_mod.classifier_build(len(vocabulary)).eval(), tuple(vocabulary), 32, 128,
                                             {"data_fingerprint": "e2e"}), quality.classifier_path())
    monkeypatch.setattr(quality, "ENCODER_STEPS", 5)
    gates_prepare()
    return melanoma


def _log_in(page, live_server, user) -> None:
    session = Client()
    session.force_login(user)
    page.context.add_cookies([{"name": live_settings.SESSION_COOKIE_NAME,
                               "value": session.cookies[live_settings.SESSION_COOKIE_NAME].value, "url": live_server.url}])


def test_fill_melanoma_on_dark_skin_review_then_publish(page, browser, live_server, gated_atlas, shot):
    curator = User.objects.create_user("rita", is_staff=True)
    curator.groups.add(Group.objects.get(name="Reviewers"))
    _log_in(page, live_server, curator)
    # The job runs inside the Start request (eager Celery in tests): give pages time on a busy machine.
    page.context.set_default_timeout(120_000)
    page.context.set_default_navigation_timeout(300_000)

    page.goto("/generation/fill-gaps/")
    page.select_option("select[name=conditions]", label="Melanoma")
    page.fill("input[name=target]", "2")
    page.get_by_role("button", name="Show the plan").click()
    page.get_by_role("button", name=re.compile(r"^Start: generate 4 images")).click()  # V and VI, two each
    expect(page.locator("#job-status")).to_have_text("Succeeded")
    job = GenerationJob.objects.get()
    for key in ("melanoma:5", "melanoma:6"):
        entry = job.progress[key]
        cell = page.locator(f'[data-cell-drawn="{key}"]')
        expect(cell).to_contain_text(str(entry["drawn"]))
        expect(page.locator(f'[data-cell-passed="{key}"]')).to_have_text(str(entry["passed"]))
    for entry in job.progress.values():  # every draw is accounted for (redraws: tests/generation/test_gaps_gates.py)
        assert entry["drawn"] == entry["passed"] + entry["failed"]["defects"] and entry["stored"] == 2
    shot(page, "job")
    stored = list(Image.objects.synthetic())
    assert stored and all(image.review_state == "pending" for image in stored)

    # The public sees nothing new: the condition page and search show no synthetic image.
    public = browser.new_context(base_url=live_server.url)
    public.set_default_timeout(120_000)
    anonymous = public.new_page()
    anonymous.goto("/search/?condition=melanoma")
    assert assert_synthetic_thumbnails_badged(anonymous) == 0
    assert not any(str(image.public_id) in anonymous.content() for image in stored)

    # The queue shows each image with its gate results (all passed: failures were never stored).
    page.goto("/generation/review/")
    cards = page.locator("[data-review-card]")
    expect(cards).to_have_count(len(stored))
    expect(cards.first.locator(".review-gates .gate-pass")).to_have_count(3)
    expect(cards.first.locator(".review-gates")).to_contain_text("defects")
    expect(cards.first.locator(".review-gates .gate-fail")).to_have_count(0)
    shot(page, "queue")
    page.keyboard.press("a")  # approve the oldest
    expect(page.locator("[data-review-message=success]")).to_have_text("1 image approved.")

    approved = Image.objects.synthetic().get(review_state="approved")
    anonymous.goto("/search/?condition=melanoma")
    assert assert_synthetic_thumbnails_badged(anonymous) == 1
    assert str(approved.public_id) in anonymous.content()
    anonymous.context.close()
