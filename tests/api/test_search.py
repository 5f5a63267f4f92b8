"""/api/v1/search/: boosts, "did you mean", the relevance floor, skin-type gaps and bad input."""

from __future__ import annotations

import pytest

from tests.api.conftest import assert_error
from tests.conftest import make_image_bytes

pytestmark = pytest.mark.django_db

URL = "/api/v1/search/"


def test_words_rank_the_condition_they_name_first_and_filter_nothing(client, catalogue):
    body = client.get(URL, {"q": "ringworm", "k": 20}).json()
    slugs = [hit["image"]["condition"]["slug"] for hit in body["hits"]]
    assert slugs[:2] == ["tinea", "tinea"] and len(slugs) == 9  # every public image, tinea first
    assert [hit["boosted"] for hit in body["hits"]][:3] == [True, True, False]
    assert body["interpreted"]["conditions"] == ["tinea"] and body["filters"]["conditions"] == []
    assert body["confident"] is True and body["closest"] == [] and body["skin_type_gap"] is None


def test_a_chosen_condition_filters(client, catalogue):
    body = client.get(URL, {"q": "ringworm", "condition": "melanoma", "k": 20}).json()
    assert {hit["image"]["condition"]["slug"] for hit in body["hits"]} == {"melanoma"}


def test_did_you_mean(client, catalogue):
    body = client.get(URL, {"q": "melanomma on dark skin"}).json()
    assert body["interpreted"]["suggestion"] == "melanoma on dark skin"
    assert body["hits"][0]["image"]["condition"]["slug"] == "melanoma"


def test_no_confident_match_below_the_floor(client, catalogue, settings):
    settings.SEARCH_FLOOR_TEXT = 0.999
    body = client.get(URL, {"q": "nothing to do with skin: a red car", "k": 3}).json()
    assert body["confident"] is False and body["hits"] == [] and len(body["closest"]) == 3
    assert body["floor"] == 0.999
    settings.SEARCH_FLOOR_IMAGE = 0.999
    photo = make_image_bytes(64, 64, color=(250, 0, 0), fmt="PNG")
    response = client.post(URL, {"image": _upload(photo), "k": 3})
    assert response.status_code == 200 and response.json()["confident"] is False


def test_a_skin_type_without_the_condition_is_said_and_the_nearest_types_labelled(client, catalogue):
    body = client.get(URL, {"q": "tinea on very dark skin", "k": 3}).json()
    assert body["skin_type_gap"] == {"conditions": ["tinea"], "requested": [6], "nearest": [5]}
    first = body["hits"][0]
    assert first["nearest_type"] and first["image"]["fitzpatrick_type"] == 5


@pytest.mark.parametrize(
    ("q", "code"),
    [("", None), ("   ", None), ("x" * 600, None), ("acne\u0000", None), ("acne\u001b[31m", "control_characters"), ("the and of", "only_stop_words")],
)
def test_bad_words_are_400_never_500(client, catalogue, q, code):
    assert_error(client.get(URL, {"q": q}), 400, code)


def test_only_a_skin_type_is_an_answer_not_an_error(client, catalogue):
    body = client.get(URL, {"q": "type V", "k": 3}).json()
    assert body["interpreted"]["only_skin_type"] is True
    assert [hit["image"]["fitzpatrick_type"] for hit in body["hits"]][:2] == [5, 5]


def test_a_file_that_is_not_a_photo_is_400(client, catalogue):
    assert_error(client.post(URL, {"image": _upload(b"%PDF-1.4 not an image")}), 400, "not_an_image")


def _upload(data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("photo.png", data, content_type="image/png")
