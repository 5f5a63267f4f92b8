"""Conditions, coverage, licences, the images list (filters, cursor pages) and image detail."""

from __future__ import annotations

import pytest

from atlas.models import Condition, Image
from atlas.services.ingestion import image_ingest
from tests.api.conftest import assert_error
from tests.conftest import approved, make_image_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def ingest(source):
    counter = iter(range(1, 10_000))

    def make(slug="melanoma", skin_type=2, reviewed=True, **kwargs) -> Image:
        image = image_ingest(
            file=make_image_bytes(seed=next(counter), fmt="PNG"),
            condition=Condition.objects.get(slug=slug),
            source=source,
            fitzpatrick_type=skin_type,
            enqueue_followups=False,
            **kwargs,
        ).image
        # Synthetic images start pending review; `reviewed` approves them, as a reviewer would.
        return approved(image) if reviewed else image

    return make


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [image["public_id"] for image in response.json()["results"]]


def test_conditions_carry_synonyms_and_counts_per_skin_type(client, ingest):
    ingest("melanoma", 5)
    ingest("melanoma", 5)
    ingest("melanoma", 6, origin="synthetic", provenance={"model": "dermgan"})
    ingest("melanoma", None)
    ingest("melanoma", 5, is_public=False)
    conditions = client.get("/api/v1/conditions/").json()
    assert len(conditions) == Condition.objects.count()
    melanoma = next(c for c in conditions if c["slug"] == "melanoma")
    assert "malignant melanoma" in melanoma["synonyms"]
    counts = {c["fitzpatrick_type"]: (c["real"], c["synthetic"]) for c in melanoma["skin_types"]}
    assert counts == {1: (0, 0), 2: (0, 0), 3: (0, 0), 4: (0, 0), 5: (2, 0), 6: (0, 1), None: (1, 0)}
    assert melanoma["total"] == {"real": 3, "synthetic": 1}
    detail = client.get("/api/v1/conditions/melanoma/").json()
    assert {key: detail[key] for key in melanoma} == melanoma  # the detail adds the teaching text


def test_coverage_matrix(client, ingest):
    ingest("tinea", 4)
    body = client.get("/api/v1/coverage/").json()
    tinea = next(row for row in body["conditions"] if row["slug"] == "tinea")
    assert tinea["cells"]["4"] == {"real": 1, "synthetic": 0} and body["total"] == {"real": 1, "synthetic": 0}


def test_licences_list_what_each_allows(client, db):
    licences = {item["id"]: item for item in client.get("/api/v1/licences/").json()}
    assert licences["CC-BY-NC-4.0"]["commercial"] is False and licences["CC-BY-4.0"]["commercial"] is True
    assert licences["CC-BY-ND-4.0"]["derivatives"] is False and licences["CC0-1.0"]["attribution"] is False


def test_images_filter_by_condition_skin_types_origin_source_and_licence(client, ingest):
    dark = [ingest("melanoma", 5), ingest("melanoma", 6)]
    ingest("melanoma", 2)
    ingest("tinea", 5)
    synthetic = ingest("melanoma", 6, origin="synthetic", provenance={"model": "dermgan", "seed": 3})
    nc = ingest("melanoma", 5, licence="CC-BY-NC-4.0")
    ingest("melanoma", 5, is_public=False)
    url = "/api/v1/images/?condition=melanoma&fitzpatrick=5&fitzpatrick=6"
    assert set(_ids(client.get(url))) == {str(i.public_id) for i in [*dark, synthetic, nc]}
    assert set(_ids(client.get(url.replace("fitzpatrick=5&fitzpatrick=6", "fitzpatrick=5,6")))) == set(_ids(client.get(url)))
    assert _ids(client.get(url + "&origin=synthetic")) == [str(synthetic.public_id)]
    assert _ids(client.get(url + "&licence=cc-by-nc-4.0")) == [str(nc.public_id)]
    assert len(_ids(client.get("/api/v1/images/?source=test-clinic"))) == 6
    body = client.get(url + "&origin=synthetic").json()["results"][0]
    assert body["is_synthetic"] is True and body["review_state"] == "approved"
    assert body["provenance"] == {"model": "dermgan", "seed": 3, "review": {"state": "approved", "reviewer": "test-fixture"}}
    assert body["file"].startswith("http://testserver/media/images/") and body["thumbnail"].startswith("http://")
    assert body["licence"] == "CC-BY-4.0" and body["licence_url"].startswith("https://creativecommons.org/")
    real = client.get(f"/api/v1/images/{dark[0].public_id}/").json()
    assert real["provenance"] is None and real["is_synthetic"] is False


def test_cursor_pages_cover_every_image_once_newest_first_even_while_images_arrive(client, ingest):
    images = [ingest("melanoma", 2) for _ in range(5)]
    first = client.get("/api/v1/images/?page_size=2").json()
    assert [i["public_id"] for i in first["results"]] == [str(i.public_id) for i in images[:2:-1][:2]]
    ingest("melanoma", 2)  # arrives between pages: must not shift them
    seen = [i["public_id"] for i in first["results"]]
    url = first["next"]
    while url:
        page = client.get(url).json()
        seen += [i["public_id"] for i in page["results"]]
        url = page["next"]
    assert seen == [str(i.public_id) for i in reversed(images)]
    assert_error(client.get("/api/v1/images/?page_size=100000"), 400, "invalid_page_size")


def test_a_hidden_image_is_not_found(client, ingest):
    hidden = ingest("melanoma", 2, is_public=False)
    assert_error(client.get(f"/api/v1/images/{hidden.public_id}/"), 404, "not_found")
    assert _ids(client.get("/api/v1/images/")) == []


def test_the_images_list_costs_a_fixed_number_of_queries(client, ingest, django_assert_max_num_queries):
    for _ in range(8):
        ingest("melanoma", 3)
    with django_assert_max_num_queries(4):
        assert len(_ids(client.get("/api/v1/images/"))) == 8
