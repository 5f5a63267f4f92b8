"""Real imports keep their labels: unmapped labels become conditions needing curation, which
stay out of the public vocabulary until a curator accepts or merges them."""

from __future__ import annotations

import pytest
from django.contrib.admin import helpers
from django.urls import reverse

from atlas.models import Condition, ConditionLabelMapping, Image
from atlas.selectors import condition_by_name, condition_names, coverage_matrix
from atlas.services import conditions as curation
from atlas.services.conditions import (
    ConditionCurationError,
    condition_accept,
    condition_merge,
    conditions_for_unmapped_labels,
)
from search.query import query_interpret
from tests.atlas.test_importers import fitzpatrick17k, run_import

pytestmark = pytest.mark.django_db

KAPOSI_MD5S = [f"{0xD0B7B0E7E3F9:032x}", f"{0xA1:032x}"]  # the fixture's two kaposi sarcoma rows


@pytest.fixture
def imported(tmp_path):
    metadata, images, _ = fitzpatrick17k(tmp_path)
    output = run_import("fitzpatrick17k", metadata, images, "--create-unmapped-conditions")
    return output, Condition.objects.get(slug="kaposi-sarcoma"), (metadata, images)


def test_the_option_files_unmapped_rows_under_a_condition_needing_curation(imported):
    output, kaposi, _ = imported
    assert kaposi.name == "Kaposi sarcoma" and kaposi.needs_curation
    assert ConditionLabelMapping.objects.get(dataset="fitzpatrick17k", label="kaposi sarcoma").condition == kaposi
    assert set(Image.objects.filter(condition=kaposi).values_list("external_id", flat=True)) == set(KAPOSI_MD5S)
    assert "imported:   4" in output and "unmapped labels: 0" in output
    assert "conditions needing curation: 1 labels, 2 rows filed under them" in output
    assert "'kaposi sarcoma' -> kaposi-sarcoma: 2" in output


def test_without_the_option_the_rows_stay_out_and_no_condition_is_made(tmp_path):
    metadata, images, _ = fitzpatrick17k(tmp_path)
    output = run_import("fitzpatrick17k", metadata, images)
    assert "'kaposi sarcoma': 2" in output and "imported:   2" in output
    assert not Condition.objects.needing_curation().exists()


def test_the_summary_counts_imported_rows_with_no_skin_type_in_any_column(imported, tmp_path):
    output, _, _ = imported
    # Row 4: fitzpatrick_scale -1 and fitzpatrick_centaur -1. Row 3 (scale -1, centaur 5) has a type.
    assert "skin type unknown in every column: 1 row imported" in output
    assert Image.objects.get(external_id=KAPOSI_MD5S[0]).fitzpatrick_type is None


def test_a_condition_needing_curation_is_hidden_from_every_public_list(imported, client):
    _, kaposi, _ = imported
    assert kaposi not in Condition.objects.public()
    assert not Image.objects.public().filter(condition=kaposi).exists()  # its images wait with it
    assert Image.objects.filter(condition=kaposi).count() == 2
    assert "kaposi-sarcoma" not in {c["slug"] for c in condition_names()}
    assert condition_by_name("kaposi sarcoma") is None
    assert query_interpret("kaposi sarcoma on the leg").conditions == ()
    assert "kaposi-sarcoma" not in {c.slug for c in coverage_matrix().conditions}
    assert "kaposi-sarcoma" in {c.slug for c in coverage_matrix(public_only=False).conditions}  # staff counts
    assert "kaposi-sarcoma" not in {c["slug"] for c in client.get("/api/v1/conditions/").json()}
    assert client.get("/api/v1/conditions/kaposi-sarcoma/").status_code == 404
    assert client.get("/api/v1/images/", {"condition": "kaposi-sarcoma"}).status_code == 400
    assert client.get(reverse("atlas:condition_detail", args=["kaposi-sarcoma"])).status_code == 404
    assert "Kaposi" not in client.get(reverse("atlas:condition_list")).content.decode()


def test_accepting_makes_the_condition_and_its_images_public(imported, client):
    _, kaposi, _ = imported
    condition_accept(condition=kaposi)
    assert Condition.objects.public().filter(slug="kaposi-sarcoma").exists()
    assert Image.objects.public().filter(condition=kaposi).count() == 2
    assert query_interpret("kaposi sarcoma").conditions == ("kaposi-sarcoma",)
    assert client.get("/api/v1/conditions/kaposi-sarcoma/").status_code == 200
    with pytest.raises(ConditionCurationError, match="already part of the public vocabulary"):
        condition_accept(condition=kaposi)


def test_merging_moves_images_and_mappings_and_deletes_the_pending_condition(imported, melanoma):
    _, kaposi, (metadata, images) = imported
    before = Image.objects.filter(condition=melanoma).count()
    result = condition_merge(condition=kaposi, into=melanoma)
    assert (result.images_moved, result.mappings_moved, result.merged_name) == (2, 1, "Kaposi sarcoma")
    assert not Condition.objects.filter(slug="kaposi-sarcoma").exists()
    assert Image.objects.filter(condition=melanoma).count() == before + 2
    assert Image.objects.public().filter(external_id__in=KAPOSI_MD5S).count() == 2
    assert ConditionLabelMapping.objects.get(dataset="fitzpatrick17k", label="kaposi sarcoma").condition == melanoma
    output = run_import("fitzpatrick17k", metadata, images)  # a re-import files those rows there now
    assert "unmapped labels: 0" in output and "duplicates: 4" in output


def test_a_merge_that_fails_half_way_changes_nothing(imported, melanoma, monkeypatch):
    _, kaposi, _ = imported

    def boom(condition, into):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(curation, "_repoint_other_references", boom)
    with pytest.raises(RuntimeError):
        condition_merge(condition=kaposi, into=melanoma)
    assert Condition.objects.get(pk=kaposi.pk).needs_curation
    assert Image.objects.filter(condition=kaposi).count() == 2
    assert ConditionLabelMapping.objects.get(dataset="fitzpatrick17k", label="kaposi sarcoma").condition == kaposi


def test_merges_that_make_no_sense_are_refused(imported, melanoma):
    _, kaposi, _ = imported
    other = conditions_for_unmapped_labels(dataset="fitzpatrick17k", labels=["milia"])["milia"]
    with pytest.raises(ConditionCurationError, match="curated condition"):
        condition_merge(condition=melanoma, into=kaposi)
    with pytest.raises(ConditionCurationError, match="needs curation itself"):
        condition_merge(condition=kaposi, into=other)
    with pytest.raises(ConditionCurationError, match="into itself"):
        condition_merge(condition=kaposi, into=kaposi)
    assert Condition.objects.filter(pk__in=[kaposi.pk, other.pk, melanoma.pk]).count() == 3


def test_a_label_named_like_a_curated_condition_never_lands_in_it(melanoma):
    made = conditions_for_unmapped_labels(dataset="newset", labels=["melanoma", "lichen planus"])
    assert made["melanoma"] != melanoma and made["melanoma"].name == "Melanoma (newset)" and made["melanoma"].needs_curation
    again = conditions_for_unmapped_labels(dataset="otherset", labels=["lichen planus"])  # same label, other dataset
    assert again["lichen planus"] == made["lichen planus"]
    assert ConditionLabelMapping.objects.filter(label="lichen planus").count() == 2


def test_the_admin_merges_through_an_intermediate_page(imported, melanoma, admin_client):
    _, kaposi, _ = imported
    url = reverse("admin:atlas_condition_changelist")
    assert "Kaposi sarcoma (needs curation)" in admin_client.get(url, {"needs_curation__exact": "1"}).content.decode()
    page = admin_client.post(url, {"action": "merge", helpers.ACTION_CHECKBOX_NAME: [kaposi.pk]})
    assert page.status_code == 200 and b"Merge into" in page.content
    assert Condition.objects.filter(pk=kaposi.pk).exists()  # nothing happens before "apply"
    done = admin_client.post(
        url, {"action": "merge", "apply": "Merge", "into": melanoma.pk, helpers.ACTION_CHECKBOX_NAME: [kaposi.pk]}, follow=True
    )
    assert "Merged Kaposi sarcoma into Melanoma: 2 image(s) moved" in done.content.decode()
    assert not Condition.objects.filter(pk=kaposi.pk).exists()


def test_the_admin_accept_action(imported, admin_client):
    _, kaposi, _ = imported
    url = reverse("admin:atlas_condition_changelist")
    done = admin_client.post(url, {"action": "accept", helpers.ACTION_CHECKBOX_NAME: [kaposi.pk]}, follow=True)
    assert "Kaposi sarcoma is now public" in done.content.decode()
    assert not Condition.objects.get(pk=kaposi.pk).needs_curation
