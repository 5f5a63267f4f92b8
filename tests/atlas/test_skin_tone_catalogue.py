"""Skin tone in the catalogue: measured at ingestion, estimated labels for unknown types (never
over a person's label), the audit command and the staff page."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse
from PIL import Image as PILImage

from atlas.models import Image
from atlas.services.ingestion import Box, image_ingest
from atlas.services.skin_tone import skin_tone_agreement, skin_tone_measure_images, skin_tone_mismatches

pytestmark = pytest.mark.django_db

LIGHT, DARK, GREY = (246, 220, 200), (80, 55, 42), (128, 128, 128)  # Chardon I, VI, no skin


@pytest.fixture(autouse=True)
def published_thresholds(settings):
    # The published bands, so each patch's expected type follows from its ITA by hand
    # (tests/atlas/test_skin_tone.py: 71.6 degrees -> I, -62.7 -> VI).
    settings.ATLAS_SKIN_TONE_CALIBRATION = "chardon-1991"
    settings.ATLAS_SKIN_TONE_MIN_CONFIDENCE = 0.3


def photo(skin, *, seed: int = 0, lesion=(150, 40, 40)) -> bytes:
    """64 x 64 PNG: skin, a lesion in the box (20, 20, 16, 16), one pixel varied by `seed`."""
    arr = np.broadcast_to(np.array(skin, np.uint8), (64, 64, 3)).copy()
    arr[20:36, 20:36] = lesion
    arr[0, seed % 64] = (seed % 256, 0, 0)
    buffer = io.BytesIO()
    PILImage.fromarray(arr).save(buffer, format="PNG")
    return buffer.getvalue()


def ingest(source, condition, skin, **kwargs):
    return image_ingest(file=photo(skin, seed=kwargs.pop("seed", 0)), condition=condition, source=source,
                        regions=[Box(20, 20, 16, 16)], enqueue_followups=False, **kwargs).image


def test_every_ingested_image_is_measured_and_keeps_its_label(source, melanoma):
    image = ingest(source, melanoma, DARK, fitzpatrick_type=1, fitzpatrick_label_source="dermatologist")
    image.refresh_from_db()
    assert image.measured_fitzpatrick_type == 6
    assert image.skin_tone["fitzpatrick"] == 6 and image.skin_tone["calibration"] == "chardon-1991"
    assert image.fitzpatrick_type == 1 and image.fitzpatrick_label_source == "dermatologist"


def test_an_unknown_type_is_estimated_only_when_asked(source, melanoma):
    asked = ingest(source, melanoma, DARK, estimate_skin_type=True)
    plain = ingest(source, melanoma, DARK, seed=1)
    asked.refresh_from_db()
    plain.refresh_from_db()
    assert asked.fitzpatrick_type == 6
    assert asked.fitzpatrick_label_source == Image.LabelSource.COLOUR_ESTIMATE
    assert asked.get_fitzpatrick_label_source_display() == "Estimated from colour"
    assert plain.fitzpatrick_type is None and plain.measured_fitzpatrick_type == 6


def test_a_given_type_is_never_replaced_by_an_estimate(source, melanoma):
    image = ingest(source, melanoma, DARK, fitzpatrick_type=2, fitzpatrick_label_source="self_reported", estimate_skin_type=True)
    image.refresh_from_db()
    assert (image.fitzpatrick_type, image.fitzpatrick_label_source) == (2, "self_reported")


def test_no_skin_means_no_measurement_and_no_estimate(source, melanoma):
    image = ingest(source, melanoma, GREY, estimate_skin_type=True)
    image.refresh_from_db()
    assert image.fitzpatrick_type is None and image.measured_fitzpatrick_type is None
    assert "none" in image.skin_tone


def test_a_weak_measurement_does_not_label(source, melanoma, settings):
    settings.ATLAS_SKIN_TONE_MIN_CONFIDENCE = 1.01  # nothing is confident enough
    image = ingest(source, melanoma, DARK, estimate_skin_type=True)
    image.refresh_from_db()
    assert image.fitzpatrick_type is None and image.measured_fitzpatrick_type == 6


def test_synthetic_images_are_measured_but_never_labelled_by_estimate(source, melanoma):
    image = ingest(source, melanoma, DARK, origin=Image.Origin.SYNTHETIC, provenance={"model": "t"}, estimate_skin_type=True)
    image.refresh_from_db()
    assert image.fitzpatrick_type is None and image.measured_fitzpatrick_type == 6


def test_mismatches_and_agreement(source, melanoma):
    far = ingest(source, melanoma, DARK, fitzpatrick_type=1, fitzpatrick_label_source="dermatologist")
    ingest(source, melanoma, DARK, seed=1, fitzpatrick_type=5, fitzpatrick_label_source="dermatologist")  # within one
    ingest(source, melanoma, LIGHT, seed=2, fitzpatrick_type=1, fitzpatrick_label_source="dermatologist")  # exact
    ingest(source, melanoma, DARK, seed=3, estimate_skin_type=True)  # an estimate agrees by construction: left out
    assert list(skin_tone_mismatches()) == [far]
    assert skin_tone_mismatches().get().type_difference == 5
    agreement = skin_tone_agreement()
    assert agreement.measured == 3 and agreement.within_one == 2 and agreement.exact == 1
    assert agreement.per_type == {1: (1, 2), 5: (1, 1)}


def test_measure_images_backfills_and_estimates_real_unknowns(source, melanoma):
    labelled = ingest(source, melanoma, DARK, fitzpatrick_type=1, fitzpatrick_label_source="dermatologist")
    unknown = ingest(source, melanoma, DARK, seed=1)
    Image.objects.update(skin_tone={}, measured_fitzpatrick_type=None)  # as before the measurement existed
    summary = skin_tone_measure_images()
    assert (summary.measured, summary.estimated, summary.no_skin) == (2, 1, 0)
    labelled.refresh_from_db()
    unknown.refresh_from_db()
    assert labelled.fitzpatrick_type == 1 and labelled.measured_fitzpatrick_type == 6
    assert unknown.fitzpatrick_type == 6 and unknown.fitzpatrick_label_source == "colour_estimate"
    assert skin_tone_measure_images().measured == 0  # nothing left to measure


def test_audit_command_json(source, melanoma):
    far = ingest(source, melanoma, DARK, fitzpatrick_type=1, fitzpatrick_label_source="dermatologist")
    out = io.StringIO()
    call_command("skin_tone_audit", "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["calibration"] == "chardon-1991"
    assert data["mismatches_total"] == 1 and data["mismatches"][0]["public_id"] == str(far.public_id)
    assert data["mismatches"][0]["labelled"] == 1 and data["mismatches"][0]["measured"] == 6
    assert data["agreement"]["per_type"]["1"] == {"measured": 1, "within_one": 0, "share_within_one": 0.0}


def test_audit_command_text_and_bad_input(source, melanoma):
    ingest(source, melanoma, LIGHT, fitzpatrick_type=1, fitzpatrick_label_source="dermatologist")
    out = io.StringIO()
    call_command("skin_tone_audit", stdout=out)
    assert "within one of the label: 1.000" in out.getvalue()
    with pytest.raises(Exception, match="--difference must be 1-5"):
        call_command("skin_tone_audit", "--difference", "9")


def test_staff_page_lists_mismatches_and_refuses_others(client, source, melanoma):
    far = ingest(source, melanoma, DARK, fitzpatrick_type=1, fitzpatrick_label_source="dermatologist")
    ingest(source, melanoma, LIGHT, seed=1, fitzpatrick_type=1, fitzpatrick_label_source="dermatologist")
    url = reverse("atlas:skin_tone_audit")
    assert client.get(url).status_code == 302  # anonymous: to the login page
    member = get_user_model().objects.create_user("member", password="pw")
    client.force_login(member)
    assert client.get(url).status_code == 302
    staff = get_user_model().objects.create_user("curator", password="pw", is_staff=True)
    client.force_login(staff)
    response = client.get(url)
    assert response.status_code == 200
    page = response.content.decode()
    assert reverse("admin:atlas_image_change", args=[far.pk]) in page
    assert page.count("<tr>") == 2  # the header and the one mismatch


def test_an_estimate_stays_inside_the_range_a_dataset_gives(source, melanoma):
    # DDI says "type 1 or 2"; the dark photo measures VI: the estimate is the nearest end of the range.
    image = ingest(source, melanoma, DARK, estimate_skin_type=True, skin_type_range=(1, 2))
    image.refresh_from_db()
    assert (image.fitzpatrick_type, image.fitzpatrick_label_source) == (2, "colour_estimate")
    assert image.measured_fitzpatrick_type == 6  # the measurement itself is kept as measured
