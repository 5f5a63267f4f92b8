"""Browser tests: Playwright for Python driving Debian's Chromium (no browser download) against
pytest-django's live server, on a small atlas indexed with the tiny random CLIP of tests/search.

Chromium comes from the project's setup (scripts/setup.sh installs the `chromium` package when
it is missing and may). Without it these tests skip locally and fail in CI (CI=true).
Screenshots are written to test-artifacts/e2e/ (gitignored) for people to look at.
"""

from __future__ import annotations

import io
import os
import random
from pathlib import Path

import pytest
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFilter

from atlas.models import Condition, Image, Source
from atlas.services.ingestion import Box, image_ingest
from atlas.skin import FITZPATRICK_SWATCH
from search import indexing, query
from tests.conftest import approved
from tests.search.conftest import search_settings, tiny_checkpoint  # noqa: F401  (fixtures, reused)

CHROMIUM = Path(os.environ.get("ATLAS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
PROVENANCE = {"model": "DermGAN", "checkpoint": "e2e-gen.pt", "seed": 7, "job": 1, "map": {"skin_type": 6, "box_scale": 1.0}}


@pytest.fixture(scope="module")  # module, not session: the event loop it runs must not outlive the browser tests
def browser():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: run scripts/setup.sh as root (it installs Debian's chromium package)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from django.db import connections
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an asyncio loop in this thread. While it runs, Django (1) refuses
    # ORM calls unless DJANGO_ALLOW_ASYNC_UNSAFE is set and (2) keeps its connections in
    # per-context storage, so tests see new connection objects, without the serialized test
    # data that `serialized_rollback` restores (the taxonomy): hand that over.
    serialized = {alias: getattr(connections[alias], "_test_serialized_contents", None) for alias in connections}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            for alias, contents in serialized.items():
                if contents is not None:
                    connections[alias]._test_serialized_contents = contents
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport=DESKTOP, base_url=live_server.url)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


@pytest.fixture
def shot(request):
    """shot(page, "label"): a full-page screenshot under test-artifacts/e2e/<test>-<label>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(tab, label: str) -> Path:
        path = ARTIFACTS / f"{request.node.name}-{label}.png"
        tab.screenshot(path=str(path), full_page=True)
        return path

    return take


def lesion_photo(skin_type: int, seed: int, size: tuple[int, int] = (192, 144)) -> tuple[bytes, Box]:
    """A small picture: skin of the type's swatch colour with a reddish lesion, and its box."""
    rng = random.Random(seed)
    width, height = size
    colour = PILImage.new("RGB", size, FITZPATRICK_SWATCH[skin_type])
    noise = PILImage.effect_noise(size, 24).convert("RGB")
    picture = PILImage.blend(colour, noise, 0.12)
    w, h = rng.randint(40, 70), rng.randint(30, 55)
    x, y = rng.randint(10, width - w - 10), rng.randint(10, height - h - 10)
    ImageDraw.Draw(picture).ellipse((x, y, x + w, y + h), fill=(150 - 10 * skin_type, 40 + seed % 30, 45))
    picture = picture.filter(ImageFilter.GaussianBlur(1.2))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue(), Box(x, y, w, h, "lesion")


@pytest.fixture
def atlas(search_settings, source: Source):  # noqa: F811
    """Tinea on I-VI (V twice), melanoma on I-IV plus a synthetic one on VI, eczema on II (not indexed)."""
    images: dict[str, Image] = {}
    plan = [("tinea", t, "real") for t in (1, 2, 3, 4, 5, 5, 6)]
    plan += [("melanoma", t, "real") for t in (1, 2, 3, 4)] + [("melanoma", 6, "synthetic"), ("eczema", 2, "real")]
    for seed, (slug, skin_type, origin) in enumerate(plan, start=1):
        data, box = lesion_photo(skin_type, seed)
        image = image_ingest(
            file=data,
            condition=Condition.objects.get(slug=slug),
            source=source,
            origin=origin,
            fitzpatrick_type=skin_type,
            fitzpatrick_label_source="dermatologist" if origin == "real" else "",
            regions=[box],
            provenance=PROVENANCE if origin == "synthetic" else None,
            enqueue_followups=False,
        ).image
        # Synthetic images start pending review; these pages show public ones, so the fixture approves it.
        images[f"{slug}-{skin_type}-{origin}-{seed}"] = approved(image)
    return images


@pytest.fixture
def indexed_atlas(atlas):
    """The atlas, embedded with the tiny CLIP and indexed: text, photo and similar search work."""
    indexing.index_rebuild()
    return atlas


def assert_synthetic_thumbnails_badged(tab) -> int:
    """Every thumbnail on the page that links to a synthetic image shows its badge.

    Which images are synthetic comes from the database, not from the page's own markup.
    Returns how many synthetic thumbnails were checked.
    """
    synthetic = {str(public_id) for public_id in Image.objects.filter(origin="synthetic").values_list("public_id", flat=True)}
    checked = 0
    thumbs = tab.locator("figure.thumb")
    for index in range(thumbs.count()):
        thumb = thumbs.nth(index)
        href = thumb.locator("a").first.get_attribute("href") or ""
        if href.rstrip("/").rsplit("/", 1)[-1] in synthetic:
            badge = thumb.locator(".badge-synthetic")
            assert badge.is_visible() and badge.inner_text().strip().lower() == "synthetic", href
            checked += 1
    return checked
