"""POST /api/v1/decks/audit/: coverage by skin type per condition, the share of types V-VI,
suggested swaps with licences; unknown and private ids reported alike; empty, oversized and
malformed decks refused with a clear 400."""

from __future__ import annotations

import uuid

import pytest

from atlas.decks import MAX_DECK_CARDS, MAX_DECK_IMAGES, Card, deck_audit
from atlas.licences import licence_get
from atlas.models import Image
from tests.api.conftest import assert_error
from tests.search.conftest import add_image  # noqa: F401 - fixture

URL = "/api/v1/decks/audit/"


@pytest.fixture
def api_client(api_client_for):
    return api_client_for("anonymous")  # a read of public data: no token needed


@pytest.fixture
def deck(add_image):
    """A melanoma deck on light skin (I, II, II, III) and one psoriasis card on V; in the atlas,
    melanoma also has a synthetic VI, a real V and a real VI (not in the deck), a pending
    synthetic V and a hidden real V (neither may be suggested or counted)."""
    ids = {
        "deck": [add_image("melanoma", skin_type=t) for t in (1, 2, 2, 3)] + [add_image("psoriasis", skin_type=5)],
        "synthetic_vi": add_image("melanoma", skin_type=6, origin="synthetic"),
        "real_v": add_image("melanoma", skin_type=5),
        "real_vi": add_image("melanoma", skin_type=6),
        "pending": add_image("melanoma", skin_type=5, origin="synthetic", reviewed=False),
        "hidden": add_image("melanoma", skin_type=5, is_public=False),
    }
    return ids


def _post(api, body: dict):
    return api.post(URL, body, format="json")


def test_coverage_per_condition_share_of_dark_types_and_swaps_real_first(api_client, deck):
    body = {"images": [str(i.public_id) for i in deck["deck"]], "max_swaps": 5}
    response = _post(api_client, body)
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["size"] == 5 and data["dark_share"] == 0.2 and data["ignored"] == []
    assert [r["count"] for r in data["by_skin_type"]] == [1, 2, 1, 0, 1, 0, 0]
    assert [r["label"] for r in data["by_skin_type"]] == ["I", "II", "III", "IV", "V", "VI", "unknown"]
    melanoma, psoriasis = data["conditions"]
    assert melanoma["condition"]["slug"] == "melanoma" and psoriasis["condition"]["slug"] == "psoriasis"
    assert not psoriasis["under_covered"] and psoriasis["swaps"] == [] and psoriasis["dark_share"] == 1.0
    assert melanoma["under_covered"] and melanoma["dark_share"] == 0.0 and melanoma["missing"] == 2  # ceil(4/3)
    swaps = melanoma["swaps"]
    assert [s["image"]["public_id"] for s in swaps] == [str(deck["real_v"].public_id), str(deck["real_vi"].public_id)]
    assert all(not s["image"]["is_synthetic"] for s in swaps) and melanoma["shortfall"] == 0  # real before synthetic
    # Each swap takes out a card of the most represented light type first (II), then the lightest.
    deck_ids = {str(i.public_id): i.fitzpatrick_type for i in deck["deck"]}
    assert [s["replace_fitzpatrick_type"] for s in swaps] == [2, 1]
    assert all(deck_ids[s["replace"]] == s["replace_fitzpatrick_type"] for s in swaps)
    licence = swaps[0]["image"]["licence"]
    known = licence_get("CC-BY-4.0")  # the test source's licence
    assert licence == {"id": "CC-BY-4.0", "name": known.name, "url": known.url} and "creativecommons.org" in known.url
    assert swaps[0]["image"]["url"].endswith(f"/api/v1/images/{deck['real_v'].public_id}/")
    assert swaps[0]["image"]["source"]["slug"] == "test-clinic"


def test_synthetic_swaps_follow_the_real_ones_and_pending_or_hidden_never_appear(api_client, deck):
    body = {"images": [str(i.public_id) for i in deck["deck"]], "dark_share_target": 1, "max_swaps": 10}
    melanoma = _post(api_client, body).json()["conditions"][0]
    suggested = [s["image"]["public_id"] for s in melanoma["swaps"]]
    assert suggested == [str(deck[k].public_id) for k in ("real_v", "real_vi", "synthetic_vi")]
    assert melanoma["swaps"][-1]["image"]["is_synthetic"] is True
    assert melanoma["missing"] == 4 and melanoma["shortfall"] == 1  # the atlas has only three to offer


def test_unknown_private_and_duplicate_ids_are_reported_per_id_alike(api_client, deck):
    unknown = uuid.uuid4()
    ids = [deck["deck"][0].public_id, unknown, deck["hidden"].public_id, deck["pending"].public_id, deck["deck"][0].public_id]
    response = _post(api_client, {"images": [str(i) for i in ids]})
    data = response.json()
    assert data["size"] == 1
    assert data["ignored"] == [
        {"public_id": str(unknown), "reason": "not_found"},
        {"public_id": str(deck["hidden"].public_id), "reason": "not_found"},  # same answer as an unknown id
        {"public_id": str(deck["pending"].public_id), "reason": "not_found"},
        {"public_id": str(deck["deck"][0].public_id), "reason": "duplicate"},
    ]
    text = response.content.decode()
    for private in (deck["hidden"], deck["pending"]):
        assert private.file.name not in text and private.sha256 not in text


def test_cards_with_counts_and_unknown_types(api_client, deck):
    body = {"cards": [{"condition": "melanoma", "count": 6, "fitzpatrick_type": 2},
                      {"condition": "melanoma", "count": 2},
                      {"condition": "melanoma", "count": 1, "fitzpatrick_type": 6}]}
    data = _post(api_client, body).json()
    [melanoma] = data["conditions"]
    assert melanoma["size"] == 9 and melanoma["missing"] == 2 and data["dark_share"] == round(1 / 9, 4)
    assert [r["count"] for r in melanoma["by_skin_type"]] == [0, 6, 0, 0, 0, 1, 2]
    assert all(s["replace"] is None for s in melanoma["swaps"]) and [s["replace_fitzpatrick_type"] for s in melanoma["swaps"]] == [2, 2]
    # The deck's images and cards count together; atlas images in the deck are never suggested.
    mixed = {"images": [str(deck["real_v"].public_id)], "cards": [{"condition": "melanoma", "count": 5, "fitzpatrick_type": 1}]}
    melanoma = _post(api_client, mixed).json()["conditions"][0]
    assert melanoma["size"] == 6 and melanoma["missing"] == 1
    assert str(deck["real_v"].public_id) not in {s["image"]["public_id"] for s in melanoma["swaps"]}


@pytest.mark.parametrize("body, code, words", [
    ({}, "empty_deck", "The deck is empty"),
    ({"dark_share_target": 0.5}, "empty_deck", "The deck is empty"),
    ({"images": []}, "invalid", None),
    ({"cards": []}, "invalid", None),
    ({"images": [str(uuid.uuid4()) for _ in range(MAX_DECK_IMAGES + 1)]}, "deck_too_large", f"at most {MAX_DECK_IMAGES} image ids"),
    ({"cards": [{"condition": "acne", "count": 1}] * (MAX_DECK_CARDS + 1)}, "deck_too_large", f"at most {MAX_DECK_CARDS} card lines"),
    ({"images": ["not-a-uuid"]}, "invalid", None),
    ({"images": [12345]}, "invalid", None),
    ({"images": ["3F2B6C1E7A4D4F0E9C1A2B5D8E9F0A11"]}, "invalid", None),  # no dashes: not how the API writes ids
    ({"images": "3f2b6c1e-7a4d-4f0e-9c1a-2b5d8e9f0a11"}, "invalid", None),
    ({"cards": [{"condition": "no-such-thing", "count": 2}]}, "unknown_condition", "unknown condition no-such-thing"),
    ({"cards": [{"condition": "acne", "count": 0}]}, "invalid", None),
    ({"cards": [{"condition": "acne", "count": "3"}]}, "invalid", None),
    ({"cards": [{"condition": "acne", "count": 3, "fitzpatrick_type": 7}]}, "invalid", None),
    ({"cards": [{"condition": "acne", "count": 3, "fitzpatrick_type": "5"}]}, "invalid", None),
    ({"cards": ["acne"]}, "invalid", None),
    ({"cards": [{"condition": "acne", "count": 1}], "dark_share_target": 1.5}, "invalid", None),
    ({"cards": [{"condition": "acne", "count": 1}], "max_swaps": 0}, "invalid", None),
])
def test_bad_decks_get_a_clear_400(api_client, db, body, code, words):
    error = assert_error(_post(api_client, body), 400, code)
    if words:
        assert words in error["message"]


def test_json_only_and_post_only(api_client, db):
    assert_error(api_client.post(URL, {"cards": "x"}, format="multipart"), 415)
    assert_error(api_client.get(URL), 405)


def test_the_selector_refuses_what_the_api_refuses(db):
    from atlas.decks import DeckError

    with pytest.raises(DeckError, match="empty"):
        deck_audit()
    with pytest.raises(DeckError, match="unknown condition"):
        deck_audit(cards=[Card("nope", 1)])
    with pytest.raises(DeckError, match="count of 1-1000"):
        deck_audit(cards=[Card("acne", 0)])
    assert deck_audit(cards=[Card("acne", 3, 5)]).dark_share == 1.0
    assert not Image.objects.exists()


def test_the_schema_documents_the_audit(client, db):
    schema = client.get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/v1/decks/audit/"]["post"]
    body = operation["requestBody"]
    assert body["required"] is True and list(body["content"]) == ["application/json"]
    request = schema["components"]["schemas"]["DeckRequest"]
    assert request["anyOf"] == [{"required": ["images"]}, {"required": ["cards"]}]
    assert request["properties"]["images"]["maxItems"] == MAX_DECK_IMAGES
    assert request["properties"]["cards"]["maxItems"] == MAX_DECK_CARDS
    assert {} in operation["security"]  # anonymous callers welcome
    assert schema["components"]["schemas"]["DeckIgnoredReasonEnum"]["enum"] == ["not_found", "duplicate"]
    assert {"200", "400", "415", "429"} <= set(operation["responses"])
