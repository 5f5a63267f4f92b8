"""Every upload path refuses an oversized body before reading it (413 from Content-Length), keeps
files in memory up to the limit, and never writes a temporary file (atlas/uploads.py)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image as PILImage

from atlas.models import Image
from tests.api.conftest import assert_error
from tests.conftest import make_image_bytes

pytestmark = pytest.mark.django_db

SIXTY_MB = 60 * 1024 * 1024


class UnreadableBody(io.RawIOBase):
    """A request body that fails the test if anything reads it."""

    def __init__(self) -> None:
        self.reads = 0

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        raise AssertionError("the body was read")

    readline = read


def post_declared(client, path: str, length: int = SIXTY_MB, **extra):
    """A multipart POST that declares `length` bytes and has a body nobody may read."""
    body = UnreadableBody()
    response = client.generic(
        "POST", path, b"", content_type="multipart/form-data; boundary=xyz",
        CONTENT_LENGTH=str(length), **{"wsgi.input": body}, **extra,
    )  # fmt: skip
    assert body.reads == 0
    return response


@pytest.fixture
def spool(settings, tmp_path, monkeypatch) -> list:
    """Every temporary upload file created during the test (Django deletes them once the
    request ends, so looking at the folder afterwards would prove nothing)."""
    from django.core.files import uploadedfile

    created: list = []
    original = uploadedfile.TemporaryUploadedFile.__init__

    def recording_init(self, *args, **kwargs):
        created.append(args[0] if args else kwargs.get("name"))
        original(self, *args, **kwargs)

    monkeypatch.setattr(uploadedfile.TemporaryUploadedFile, "__init__", recording_init)
    return created


def big_png() -> bytes:
    """A 3 MB PNG: over FILE_UPLOAD_MAX_MEMORY_SIZE (2.5 MB), under the 25 MB upload limit."""
    noise = np.random.default_rng(0).integers(0, 256, (1000, 1000, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    PILImage.fromarray(noise).save(buffer, format="PNG", compress_level=0)
    return buffer.getvalue()


# --- refused from the Content-Length alone ----------------------------------------------------


@pytest.mark.parametrize("role", ["contributor", "anonymous"])
def test_the_api_refuses_a_declared_60_mb_body_unread(api_client_for, source, role):
    api = api_client_for(role)
    path = "/api/v1/uploads/" if role == "contributor" else "/api/v1/search/"
    error = assert_error(post_declared(api, path), 413, "too_large")
    assert "25 MiB" in error["message"]


def test_the_web_photo_search_refuses_a_declared_60_mb_body_unread(db):
    response = post_declared(Client(), reverse("atlas:search_photo"))
    assert response.status_code == 413 and "larger than" in response.content.decode()


def test_the_admin_refuses_a_declared_60_mb_body_unread(admin_client):
    response = post_declared(admin_client, reverse("admin:atlas_image_add"))
    assert response.status_code == 413 and response["Content-Type"].startswith("text/plain")


def test_a_body_under_the_limit_goes_through(api_client_for, source):
    response = api_client_for("staff").post(
        "/api/v1/uploads/", {"file": SimpleUploadedFile("a.jpg", make_image_bytes(seed=1)), "condition": "melanoma",
                             "source": "test-clinic"}, format="multipart",
    )  # fmt: skip
    assert response.status_code == 201


# --- a file that passes the limit as it streams in ------------------------------------------


def test_an_api_upload_over_the_limit_is_a_413_and_stores_nothing(api_client_for, source, settings, media_root, spool):
    settings.ATLAS_MAX_UPLOAD_BYTES = 4096  # the file fits the envelope allowance, not the limit
    data = make_image_bytes(100, 100, seed=2, fmt="PNG", compress_level=0)
    assert 4096 < len(data) < 4096 + 64 * 1024
    response = api_client_for("staff").post(
        "/api/v1/uploads/", {"file": SimpleUploadedFile("a.png", data), "condition": "melanoma", "source": "test-clinic"},
        format="multipart",
    )  # fmt: skip
    assert_error(response, 413, "too_large")
    assert Image.objects.count() == 0 and not any(media_root.rglob("*.*")) and spool == []


def test_an_api_search_photo_over_the_limit_is_a_413(api_client_for, settings, spool, db):
    settings.ATLAS_MAX_UPLOAD_BYTES = 4096
    data = make_image_bytes(100, 100, seed=3, fmt="PNG", compress_level=0)
    response = api_client_for("anonymous").post("/api/v1/search/", {"image": SimpleUploadedFile("a.png", data)}, format="multipart")
    assert_error(response, 413, "too_large")
    assert spool == []


# --- never a temporary file -----------------------------------------------------------------


def test_a_3_mb_api_photo_search_never_touches_the_disk(api_client_for, spool, monkeypatch, db):
    """docs/api.md: the photo is searched in memory and never stored (Django spools over 2.5 MB)."""
    from atlas.api import views
    from search.errors import SearchUnavailable

    seen = {}

    def fake_search_image(*, data, **kwargs):
        seen["bytes"] = len(data)
        raise SearchUnavailable("no model in this test")

    monkeypatch.setattr(views, "search_image", fake_search_image)
    data = big_png()
    response = api_client_for("anonymous").post("/api/v1/search/", {"image": SimpleUploadedFile("p.png", data)}, format="multipart")
    assert_error(response, 503, "search_unavailable")
    assert seen["bytes"] == len(data)  # the whole photo reached the search, from memory
    assert spool == []


def test_a_3_mb_api_upload_never_touches_the_temporary_folder(api_client_for, source, spool):
    response = api_client_for("staff").post(
        "/api/v1/uploads/", {"file": SimpleUploadedFile("p.png", big_png()), "condition": "melanoma", "source": "test-clinic"},
        format="multipart",
    )  # fmt: skip
    assert response.status_code == 201 and spool == []


def test_every_upload_uses_the_limited_memory_handler(settings):
    assert settings.FILE_UPLOAD_HANDLERS == ["atlas.uploads.LimitedMemoryUploadHandler"]
    middleware = settings.MIDDLEWARE
    assert middleware.index("atlas.uploads.UploadLimitMiddleware") < middleware.index("django.middleware.csrf.CsrfViewMiddleware")
