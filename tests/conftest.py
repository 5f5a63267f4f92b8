"""Fixtures shared by every test: a private MEDIA_ROOT, factories for catalogue rows, and the
test tiers.

Tiers are markers (pyproject.toml): `postgres`, `broker`, `browser`, `s3`, `ops`, `slow`.
`pytest -m "not (postgres or broker or browser or ops)"` runs what needs nothing but Python.
A test whose tier needs something this machine lacks (PostgreSQL, Redis, a redis-server
binary, root, Chromium) skips with the reason; in CI (CI=true) it fails instead, so no tier
goes quiet there. `postgres` tests are the exception on CI's SQLite pass: the PostgreSQL pass
runs them (and fails them if they cannot run).
"""

from __future__ import annotations

import io
import os
import shutil

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


# --- test tiers -----------------------------------------------------------------------------

REDIS_TEST_URL = os.environ.get("ATLAS_GAPS_TEST_BROKER", "redis://127.0.0.1:6379/5")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(condition: bool, reason: str) -> None:
    """Skip (locally) or fail (in CI) a test whose environment lacks what it needs."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"CI must run this test, but {reason}", pytrace=False)
    pytest.skip(reason)


def on_postgres() -> bool:
    from django.conf import settings

    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def redis_problem(url: str = REDIS_TEST_URL) -> str:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        return f"Redis at {url} cannot be reached ({exc}); start one (e.g. apt-get install redis-server)"
    return ""


def require_redis_server_binary() -> None:
    require(shutil.which("redis-server") is not None, "the redis-server binary is missing (apt-get install redis-server)")


def require_root(why: str) -> None:
    require(os.geteuid() == 0, f"needs root to {why}")


def pytest_runtest_setup(item) -> None:
    markers = {m.name for m in item.iter_markers()}
    if "postgres" in markers and not on_postgres():
        # Not a gap in CI: its second pass runs the suite on PostgreSQL.
        pytest.skip("needs the suite on PostgreSQL (DATABASE_URL=postgres://...); CI's PostgreSQL pass runs it")
    if "broker" in markers:
        problem = redis_problem()
        require(not problem, problem)


@pytest.fixture(autouse=True)
def gates_off(settings):
    """Gap filling's bookkeeping is tested without the automatic gates, whose judges (a trained
    classifier and encoder) the test catalogue does not have; tests/generation/test_gates*.py
    turn them on."""
    settings.ATLAS_GATES = []
