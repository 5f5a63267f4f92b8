"""The curator admin: lists, filters, and an "add image" that goes through image_ingest."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

import atlas.forms
from atlas.models import Condition, ConditionLabelMapping, Image
from atlas.services.ingestion import Box, image_ingest
from tests.conftest import make_image_bytes


@pytest.fixture
def image(source, melanoma):
    return image_ingest(
        file=make_image_bytes(fmt="PNG"), condition=melanoma, source=source, fitzpatrick_type=4,
        regions=[Box(1, 2, 10, 10, "lesion")], external_id="ISIC_0001",
    ).image  # fmt: skip


def add_image(admin_client, source, melanoma, data: bytes, name: str = "photo.jpg", **fields):
    post = {
        "upload": SimpleUploadedFile(name, data, content_type="image/jpeg"),
        "condition": melanoma.pk, "source": source.pk, "fitzpatrick_type": "5",
        "fitzpatrick_label_source": "dermatologist", "is_public": "on", **fields,
    }  # fmt: skip
    return admin_client.post(reverse("admin:atlas_image_add"), post)


def files_under(root) -> list:
    return [p for p in root.rglob("*") if p.is_file()]


def test_changelist_shows_thumbnails(admin_client, image):
    page = admin_client.get(reverse("admin:atlas_image_changelist")).text
    assert image.thumbnail.url in page


def test_changelist_filters_by_skin_type_and_origin(admin_client, image):
    url = reverse("admin:atlas_image_changelist")
    assert image.thumbnail.url in admin_client.get(url, {"fitzpatrick_type__exact": "4", "origin__exact": "real"}).text
    assert image.thumbnail.url not in admin_client.get(url, {"fitzpatrick_type__exact": "5"}).text


def test_changelist_searches_external_id(admin_client, image):
    page = admin_client.get(reverse("admin:atlas_image_changelist"), {"q": "ISIC_0001"}).text
    assert image.thumbnail.url in page


def test_changelist_searches_public_id(admin_client, image):
    page = admin_client.get(reverse("admin:atlas_image_changelist"), {"q": str(image.public_id)}).text
    assert image.thumbnail.url in page


def test_change_page_shows_regions_inline_and_readonly_hash(admin_client, image):
    page = admin_client.get(reverse("admin:atlas_image_change", args=[image.pk])).text
    assert 'name="regions-0-x"' in page
    assert image.sha256 in page and 'name="sha256"' not in page


def test_add_form_asks_for_a_file(admin_client, db):
    page = admin_client.get(reverse("admin:atlas_image_add")).text
    assert 'type="file" name="upload"' in page


def test_add_image_goes_through_ingestion(admin_client, source, melanoma, monkeypatch):
    calls = []
    monkeypatch.setattr(atlas.forms, "image_ingest", lambda **kw: calls.append(kw) or image_ingest(**kw))
    response = add_image(admin_client, source, melanoma, make_image_bytes(80, 60), boxes="5,5,20,10")
    assert response.status_code == 302
    stored = Image.objects.get()
    assert len(calls) == 1 and stored.fitzpatrick_type == 5 and stored.sha256
    assert [(r.x, r.y, r.width, r.height) for r in stored.regions.all()] == [(5, 5, 20, 10)]


def test_add_rejects_html_renamed_jpg_cleanly(admin_client, source, melanoma, media_root):
    response = add_image(admin_client, source, melanoma, b"<html><body>not an image</body></html>")
    assert response.status_code == 200
    assert "not a JPEG, PNG or WebP image" in response.text
    assert Image.objects.count() == 0 and files_under(media_root) == []


def test_add_reports_a_duplicate_without_storing_it(admin_client, source, melanoma, image):
    response = add_image(admin_client, source, melanoma, make_image_bytes(fmt="PNG"), name="again.png")
    assert response.status_code == 200
    assert f"already in the catalogue (image {image.public_id})" in response.text
    assert Image.objects.count() == 1


def test_add_rejects_a_box_outside_the_image(admin_client, source, melanoma, media_root):
    response = add_image(admin_client, source, melanoma, make_image_bytes(80, 60), boxes="70,0,20,20")
    assert response.status_code == 200
    assert "lies outside the 80x60 image" in response.text
    assert Image.objects.count() == 0 and files_under(media_root) == []


def test_add_rejects_unreadable_boxes(admin_client, source, melanoma):
    response = add_image(admin_client, source, melanoma, make_image_bytes(), boxes="five,5,20,10")
    assert "line 1: write a box as x,y,width,height" in response.text
    assert Image.objects.count() == 0


def condition_post(synonyms: str = "", dataset: str = "", label: str = "") -> dict:
    """A change-form POST for melanoma, with at most one new label mapping."""
    post = {
        "slug": "melanoma", "name": "Melanoma", "category": "malignant", "description": "", "synonyms": synonyms,
        "label_mappings-TOTAL_FORMS": "1", "label_mappings-INITIAL_FORMS": "0",
        "label_mappings-MIN_NUM_FORMS": "0", "label_mappings-MAX_NUM_FORMS": "1000",
    }  # fmt: skip
    if label:
        post |= {"label_mappings-0-dataset": dataset, "label_mappings-0-label": label}
    return post


def test_condition_synonyms_are_edited_one_per_line(admin_client, melanoma):
    url = reverse("admin:atlas_condition_change", args=[melanoma.pk])
    assert "malignant melanoma\nskin cancer mole" in admin_client.get(url).text
    assert admin_client.post(url, condition_post("malignant melanoma\n\nblack mole\nBlack mole")).status_code == 302
    assert Condition.objects.get(pk=melanoma.pk).synonyms == ["malignant melanoma", "black mole"]


def test_condition_label_mapping_inline_adds_a_lower_cased_label(admin_client, melanoma):
    url = reverse("admin:atlas_condition_change", args=[melanoma.pk])
    assert admin_client.post(url, condition_post(dataset="ddi", label="Melanoma In Situ X")).status_code == 302
    assert ConditionLabelMapping.objects.get(dataset="ddi", label="melanoma in situ x").condition == melanoma


def test_duplicate_label_in_another_case_is_a_form_error(admin_client, melanoma):
    ConditionLabelMapping.objects.update_or_create(dataset="ham10000", label="mel", defaults={"condition": melanoma})
    url = reverse("admin:atlas_condition_change", args=[melanoma.pk])
    response = admin_client.post(url, condition_post(dataset="ham10000", label="MEL"))
    assert response.status_code == 200
    assert "already exists" in response.text


@pytest.mark.parametrize(
    "name", ["admin:atlas_source_changelist", "admin:atlas_conditionlabelmapping_changelist", "admin:atlas_condition_changelist"]
)
def test_other_changelists_load(admin_client, image, name):
    assert admin_client.get(reverse(name)).status_code == 200


def test_region_inline_rejects_a_box_outside_the_image(admin_client, image):
    region = image.regions.get()
    post = {
        "condition": image.condition_id, "is_public": "on", "fitzpatrick_type": "4", "fitzpatrick_label_source": "",
        "monk_tone": "", "body_site": "", "case_id": "", "external_id": "ISIC_0001", "source": image.source_id,
        "licence": "CC-BY-4.0", "attribution": "",
        "regions-TOTAL_FORMS": "1", "regions-INITIAL_FORMS": "1", "regions-MIN_NUM_FORMS": "0",
        "regions-MAX_NUM_FORMS": "1000", "regions-0-id": region.pk, "regions-0-image": image.pk,
        "regions-0-x": "60", "regions-0-y": "0", "regions-0-width": "10", "regions-0-height": "10", "regions-0-label": "",
    }  # fmt: skip
    response = admin_client.post(reverse("admin:atlas_image_change", args=[image.pk]), post)
    assert response.status_code == 200
    assert "lies outside the 64x48 image" in response.text
    assert image.regions.get().x == 1
