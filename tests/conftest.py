"""Fixtures shared by every test: a private MEDIA_ROOT, and factories for catalogue rows."""

from __future__ import annotations

import io

import pytest
from PIL import Image as PILImage

from atlas.content_credentials import demo_pair_paths, demo_pair_write
from atlas.models import Condition, Source


@pytest.fixture(autouse=True)
def media_root(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def fresh_throttle_counts():
    """Throttle counts (API and the web photo search) live in a process-wide cache."""
    from django.core.cache import caches

    caches["api"].clear()
    yield
    caches["api"].clear()


@pytest.fixture(scope="session")
def c2pa_demo_dir(tmp_path_factory):
    """One demo signing pair for the whole run (making one per test would cost a key generation)."""
    directory = tmp_path_factory.mktemp("c2pa")
    demo_pair_write(directory)
    return directory


@pytest.fixture(autouse=True)
def c2pa_pair(c2pa_demo_dir, settings):
    """Synthetic ingestion signs with the session's demo pair, never with the checkout's var/c2pa."""
    key, cert, ca = demo_pair_paths(c2pa_demo_dir)
    settings.ATLAS_C2PA_KEY_FILE, settings.ATLAS_C2PA_CERT_FILE, settings.ATLAS_C2PA_TRUST_ANCHORS_FILE = (
        str(key), str(cert), str(ca),
    )
    settings.ATLAS_C2PA_DEMO_KEYS = True
    return key, cert, ca


@pytest.fixture
def source(db) -> Source:
    return Source.objects.create(
        name="Test clinic", slug="test-clinic", licence="CC-BY-4.0", allows_generative_training=True
    )


@pytest.fixture
def melanoma(db) -> Condition:
    return Condition.objects.get(slug="melanoma")


def make_image_bytes(
    width: int = 64, height: int = 48, *, color=(180, 120, 90), fmt: str = "JPEG", seed: int = 0, **save_kwargs
) -> bytes:
    """A small image whose pixels depend on `seed`, so different seeds never collide as duplicates."""
    image = PILImage.new("RGB", (width, height), color)
    image.putpixel((seed % width, (seed // width) % height), (seed % 256, (seed * 7) % 256, (seed * 13) % 256))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save_kwargs)
    return buffer.getvalue()


@pytest.fixture
def image_bytes():
    return make_image_bytes


def approved(image):
    """Mark a synthetic image approved, as a reviewer would (generation.review): factories of
    tests that want a *public* synthetic image call this; pending ones stay out of public reads."""
    from atlas.models import Image

    if image.is_synthetic and image.review_state == Image.ReviewState.PENDING:
        image.review_state = Image.ReviewState.APPROVED
        image.provenance = {**image.provenance, "review": {"state": "approved", "reviewer": "test-fixture"}}
        Image.objects.filter(pk=image.pk).update(review_state=image.review_state, provenance=image.provenance)
    return image
