"""One FilterSet (atlas/filters.py), the same answer everywhere: each filter through the catalogue
API, the search API and the search page (ranked and browsing), against what it should select."""

from __future__ import annotations

import pytest
from django.core.cache import caches
from django.urls import reverse
from rest_framework.test import APIClient

from atlas.filters import FilterError, ImageFilters, filters_parse, images_filtered
from atlas.models import Condition, Image, Source
from atlas.services.ingestion import image_ingest
from search import indexing
from tests.conftest import approved, make_image_bytes
from tests.search.conftest import search_settings, tiny_checkpoint  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_throttle_counts():
    caches["api"].clear()
    yield
    caches["api"].clear()

# (condition, skin type, origin, source, licence) of each image in the catalogue
ROWS = [
    ("melanoma", 2, "real", "test-clinic", "CC-BY-4.0"),
    ("melanoma", 5, "real", "test-clinic", "CC-BY-NC-4.0"),
    ("melanoma", 6, "synthetic", "other-clinic", "CC-BY-4.0"),
    ("melanoma", None, "real", "other-clinic", "CC0-1.0"),
    ("tinea", 2, "real", "other-clinic", "CC-BY-4.0"),
    ("tinea", 5, "synthetic", "test-clinic", "CC-BY-NC-4.0"),
    ("eczema", 6, "real", "test-clinic", "CC-BY-4.0"),
]


def _selects(params: dict, row: tuple) -> bool:
    """What each filter means, written out independently of the code under test."""
    condition, skin_type, origin, source, licence = row
    conditions = [c for value in _values(params.get("condition")) for c in value.split(",")]
    types = [t for value in _values(params.get("fitzpatrick")) for t in value.split(",")]
    return (
        (not conditions or condition in conditions)
        and (not types or ("unknown" if skin_type is None else str(skin_type)) in types)
        and (not params.get("origin") or origin == params["origin"])
        and (not params.get("source") or source == params["source"])
        and (not params.get("licence") or licence.lower() == params["licence"].lower())
    )


def _values(value) -> list[str]:
    return [] if value is None else value if isinstance(value, list) else [value]


CASES = [
    {"condition": "melanoma"},
    {"condition": "melanoma,tinea"},
    {"fitzpatrick": "5"},
    {"fitzpatrick": ["5", "6"]},
    {"fitzpatrick": "5,6"},
    {"origin": "synthetic"},
    {"origin": "real"},
    {"source": "other-clinic"},
    {"licence": "cc-by-4.0"},  # issue 14: iexact in one place, exact in another
    {"licence": "CC-BY-NC-4.0"},
    {"condition": "melanoma", "fitzpatrick": "2", "licence": "cc-by-4.0", "origin": "real", "source": "test-clinic"},
]


@pytest.fixture
def catalogue(search_settings, source):  # noqa: F811
    other = Source.objects.create(name="Other clinic", slug="other-clinic", licence="CC-BY-4.0")
    sources = {"test-clinic": source, "other-clinic": other}
    images = []
    for seed, (condition, skin_type, origin, source_slug, licence) in enumerate(ROWS, start=1):
        images.append(
            approved(image_ingest(
                file=make_image_bytes(color=((seed * 37) % 256, (seed * 91) % 256, 90), seed=seed, fmt="PNG"),
                condition=Condition.objects.get(slug=condition),
                source=sources[source_slug],
                origin=origin,
                fitzpatrick_type=skin_type,
                licence=licence,
                provenance={"model": "test"} if origin == "synthetic" else None,
                enqueue_followups=False,
            ).image)
        )
    indexing.index_rebuild()
    return images


def _expected(catalogue, params) -> set[str]:
    return {str(image.public_id) for image, row in zip(catalogue, ROWS, strict=True) if _selects(params, row)}


def _catalogue_api(params) -> set[str]:
    response = APIClient().get("/api/v1/images/", {**params, "page_size": 200})
    assert response.status_code == 200, response.content
    return {item["public_id"] for item in response.json()["results"]}


def _search_api(params) -> set[str]:
    response = APIClient().get("/api/v1/search/", {**params, "q": "a patch of skin", "k": 200})
    assert response.status_code == 200, response.content
    return {hit["image"]["public_id"] for hit in response.json()["hits"]}


def _page(client, params) -> set[str]:
    """The search page, browsing (no words) and ranked (with words): the same images."""
    wanted = {**params}
    if "condition" in wanted:
        wanted["condition"] = Condition.objects.get(slug=wanted["condition"]).name  # the page's picker takes names
    found = []
    for extra in ({}, {"q": "a patch of skin"}):
        response = client.get(reverse("atlas:search"), {**wanted, **extra})
        assert response.status_code == 200, response.content[:300]
        found.append({str(i.public_id) for i in Image.objects.all() if reverse("atlas:image_detail", args=[i.public_id]) in response.text})
    assert found[0] == found[1]
    return found[0]


@pytest.mark.parametrize("params", CASES, ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()))
def test_each_filter_means_the_same_in_the_catalogue_api_the_search_api_and_the_search_page(client, catalogue, params):
    expected = _expected(catalogue, params)
    assert expected  # every case selects something
    assert _catalogue_api(params) == expected
    if "unknown" not in str(params.get("fitzpatrick")):
        assert _search_api(params) == expected
    if "," not in params.get("condition", ""):  # the page picks one condition, by name
        ticked = {k: (v.split(",") if isinstance(v, str) else v) if k == "fitzpatrick" else v for k, v in params.items()}
        assert _page(client, ticked) == expected


def test_the_unknown_skin_type_is_a_filter_of_the_catalogue_api_and_the_page(client, catalogue):
    expected = _expected(catalogue, {"fitzpatrick": "unknown"})
    assert len(expected) == 1 and _catalogue_api({"fitzpatrick": "unknown"}) == expected
    response = client.get(reverse("atlas:search"), {"fitzpatrick": "unknown"})
    assert {str(i.public_id) for i in Image.objects.all() if reverse("atlas:image_detail", args=[i.public_id]) in response.text} == expected


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"condition": "nope"}, "condition"),
        ({"fitzpatrick": "7"}, "fitzpatrick"),
        ({"origin": "fake"}, "origin"),
        ({"source": "nowhere"}, "source"),
        ({"licence": "x" * 65}, "licence"),
    ],
)
def test_a_bad_value_is_refused_with_its_field_named_everywhere(client, catalogue, params, field):
    with pytest.raises(FilterError) as caught:
        filters_parse(params)
    assert caught.value.field == field
    for url in ("/api/v1/images/", "/api/v1/search/"):
        response = APIClient().get(url, {**params, "q": "skin"})
        assert response.status_code == 400 and field in response.json()["error"]["details"], response.content


def test_typed_filters_and_query_strings_agree(catalogue):
    typed = ImageFilters(conditions=("melanoma",), skin_types=(5, None), licence="cc-by-nc-4.0")
    assert filters_parse(typed.as_query()) == ImageFilters(conditions=("melanoma",), skin_types=(None, 5), licence="cc-by-nc-4.0")
    assert set(images_filtered(typed)) == {catalogue[1]}


def test_the_search_indexes_cover_exactly_the_public_rule_on_the_image_table():
    # The partial indexes repeat the image-table half of public_q (a Meta cannot import it):
    # if the rule changes, PostgreSQL would silently stop using them.
    from django.db.models import Q

    from atlas.models import Image
    rule = Q(is_public=True, review_state__in=[str(state) for state in Image.VISIBLE_REVIEW_STATES])
    indexes = [index for index in Image._meta.indexes if index.name.startswith("image_public_by_")]
    assert len(indexes) == 2
    for index in indexes:
        assert index.condition == rule and index.fields[-1] == "id"


@pytest.mark.parametrize("params", CASES, ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()))
def test_checked_filters_are_applied_without_checking_them_again_and_select_the_same(catalogue, params, django_assert_num_queries):
    checked = filters_parse(params)
    assert checked.is_checked and not checked.replace().is_checked and checked == checked.replace()
    with django_assert_num_queries(0):  # no condition or source looked up again
        images = images_filtered(checked)
    assert set(images) == set(images_filtered(checked.replace())) == {i for i in catalogue if str(i.public_id) in _expected(catalogue, params)}
    # A ranking tier: other conditions and skin types, still checked, the same as validating them.
    tier = checked.narrowed(conditions=("tinea",), skin_types=(5, None))
    assert tier.is_checked and tier == checked.replace(conditions=("tinea",), skin_types=(5, None))
    assert set(images_filtered(tier)) == set(images_filtered(tier.replace()))
    assert "_checked" not in checked.as_dict()


def test_narrowing_unchecked_filters_leaves_them_unchecked():
    assert not ImageFilters(conditions=("melanoma",)).narrowed(skin_types=(2,)).is_checked
