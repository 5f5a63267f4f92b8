"""Uploads go through image_ingest: stored, duplicates reported with the existing id, bad files refused."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from atlas.models import Image, Source
from atlas.services.ingestion import image_ingest
from tests.api.conftest import assert_error
from tests.conftest import make_image_bytes

pytestmark = pytest.mark.django_db


def _upload(api, data: bytes, **fields):
    body = {"file": SimpleUploadedFile("p.jpg", data), "condition": "melanoma", "source": "test-clinic", **fields}
    return api.post("/api/v1/uploads/", body, format="multipart")


def _stored_files(media_root) -> list:
    return [p for p in media_root.rglob("*") if p.is_file()]


def test_a_contributor_upload_is_stored_for_review(api_client_for, source):
    regions = json.dumps([{"x": 2, "y": 3, "width": 10, "height": 8, "label": "lesion"}])
    response = _upload(api_client_for("contributor"), make_image_bytes(seed=1), fitzpatrick_type=6, regions=regions)
    assert response.status_code == 201
    body = response.json()
    assert body["duplicate"] is False and body["image"]["public_id"] == body["public_id"]
    assert body["labels_applied"] is True
    image = Image.objects.get(public_id=body["public_id"])
    assert (image.condition.slug, image.fitzpatrick_type, image.origin, image.licence) == ("melanoma", 6, "real", "CC-BY-4.0")
    assert [(r.x, r.y, r.width, r.height, r.label) for r in image.regions.all()] == [(2, 3, 10, 8, "lesion")]
    assert image.is_public is False  # waits for a curator
    # A hidden image's files: the authenticated view, never a storage path.
    assert body["image"]["file"] == f"http://testserver/images/{image.public_id}/file/"
    assert image.file.name.startswith("private/images/") and image.public_id.hex not in image.file.name


def test_a_staff_upload_is_public(api_client_for, source):
    response = _upload(api_client_for("staff"), make_image_bytes(seed=2))
    assert response.status_code == 201 and Image.objects.get().is_public
    assert response.json()["image"]["file"].startswith("http://testserver/media/images/")


def test_a_duplicate_of_a_public_image_returns_the_existing_id_with_200(api_client_for, source, media_root, melanoma):
    existing = image_ingest(file=make_image_bytes(seed=3), condition=melanoma, source=source, fitzpatrick_type=5).image
    files = _stored_files(media_root)
    again = _upload(api_client_for("contributor"), make_image_bytes(seed=3), fitzpatrick_type=2)
    assert again.status_code == 200
    body = again.json()
    assert body["duplicate"] is True and body["public_id"] == str(existing.public_id)
    assert body["image"]["public_id"] == str(existing.public_id)
    # The labels sent with it are not applied, and the answer says so.
    assert body["labels_applied"] is False and "not applied" in body["message"]
    existing.refresh_from_db()
    assert existing.fitzpatrick_type == 5
    assert Image.objects.count() == 1 and _stored_files(media_root) == files


def _private_import(melanoma, seed: int) -> Image:
    """A DDI-style private import: hidden, with a source, attribution and licence of its own."""
    secret = Source.objects.create(name="Secret study", slug="secret-study", licence="LicenseRef-DDI")
    return image_ingest(
        file=make_image_bytes(seed=seed), condition=melanoma, source=secret, fitzpatrick_type=6,
        attribution="Private cohort, do not share", external_id="DDI-000123", is_public=False,
    ).image  # fmt: skip


def test_a_duplicate_of_a_hidden_image_reveals_nothing_about_it(api_client_for, source, media_root, melanoma):
    hidden = _private_import(melanoma, seed=30)
    files = _stored_files(media_root)
    response = _upload(api_client_for("contributor"), make_image_bytes(seed=30), condition="tinea", fitzpatrick_type=1)
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "public_id": None,
        "duplicate": True,
        "labels_applied": False,
        "message": "These pixels are already in the atlas: nothing was stored and the labels sent with them were not applied.",
        "image": None,
    }
    text = response.content.decode()
    for secret in (str(hidden.public_id), hidden.public_id.hex, "secret-study", "Private cohort", "DDI", "/media/"):
        assert secret not in text
    hidden.refresh_from_db()
    assert (hidden.condition.slug, hidden.fitzpatrick_type, hidden.is_public) == ("melanoma", 6, False)
    assert Image.objects.count() == 1 and _stored_files(media_root) == files


def test_a_contributor_does_not_see_a_hidden_upload_again(api_client_for, source):
    """Contributor uploads wait hidden for a curator: uploading the same pixels again names nothing."""
    api = api_client_for("contributor")
    assert _upload(api, make_image_bytes(seed=31)).status_code == 201
    again = _upload(api, make_image_bytes(seed=31)).json()
    assert again["duplicate"] is True and again["public_id"] is None and again["image"] is None


def test_staff_see_the_hidden_image_a_duplicate_matches(api_client_for, source, melanoma):
    hidden = _private_import(melanoma, seed=32)
    body = _upload(api_client_for("staff"), make_image_bytes(seed=32)).json()
    assert body["duplicate"] is True and body["labels_applied"] is False
    assert body["public_id"] == str(hidden.public_id) and body["image"]["source"]["slug"] == "secret-study"


@pytest.mark.parametrize(
    ("data", "fields", "code"),
    [
        (b"GIF89a not really", {}, "not_an_image"),
        (b"", {}, "invalid"),  # DRF refuses an empty file before ingestion sees it
        (make_image_bytes(seed=4)[:200], {}, "corrupt"),
        (make_image_bytes(seed=5), {"regions": '[{"x": 60, "y": 0, "width": 10, "height": 10}]'}, "region_outside"),
        (make_image_bytes(seed=6), {"regions": "[{"}, "invalid"),
        (make_image_bytes(seed=7), {"regions": '{"x": 1}'}, "invalid"),
        (make_image_bytes(seed=8), {"regions": '[{"x": -1, "y": 0, "width": 1, "height": 1}]'}, "invalid"),
        (make_image_bytes(seed=9), {"condition": "no-such"}, "unknown_condition"),
        (make_image_bytes(seed=10), {"source": "no-such"}, "unknown_source"),
        (make_image_bytes(seed=11), {"fitzpatrick_type": 7}, "invalid"),
        (make_image_bytes(seed=12), {"monk_tone": 11}, "invalid"),
    ],
)
def test_bad_uploads_are_400_with_the_ingestion_code_and_store_nothing(api_client_for, source, media_root, data, fields, code):
    error = assert_error(_upload(api_client_for("staff"), data, **fields), 400, code)
    assert error["message"]
    assert Image.objects.count() == 0 and _stored_files(media_root) == []


def test_an_oversized_upload_is_refused(api_client_for, source, settings):
    settings.ATLAS_MAX_UPLOAD_BYTES = 1024
    assert_error(_upload(api_client_for("staff"), make_image_bytes(400, 400, seed=13, fmt="PNG")), 413, "too_large")
