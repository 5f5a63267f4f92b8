"""Per-client throttling (429 + Retry-After in the shared error shape) and the CORS allow-list."""

from __future__ import annotations

import pytest

from atlas.api.tokens import api_token_create
from tests.api.conftest import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def low_rates(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"burst": "3/min", "sustained": "5/day", "anon_burst": "2/min", "anon_sustained": "100/day"},
    }


def test_a_flooding_client_gets_429_with_retry_after(low_rates, api_client_for):
    api = api_client_for("client")
    assert [api.get("/api/v1/licences/").status_code for _ in range(3)] == [200, 200, 200]
    response = api.get("/api/v1/licences/")
    error = assert_error(response, 429, "throttled")
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= 60 and error["details"] == {"retry_after": retry_after}


def test_throttles_count_per_client_across_its_tokens(low_rates, api_client_for):
    first = api_client_for("client")
    for _ in range(3):
        first.get("/api/v1/licences/")
    assert first.get("/api/v1/licences/").status_code == 429
    # Another token of the same client shares the count; another client does not.
    from atlas.models import ApiClient

    same_client = api_client_for("anonymous")
    same_client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_create(client=ApiClient.objects.get())[1]}")
    assert same_client.get("/api/v1/licences/").status_code == 429
    assert api_client_for("staff").get("/api/v1/licences/").status_code == 200


def test_the_sustained_window_limits_after_the_burst_window(low_rates, api_client_for, settings):
    settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["burst"] = "100/min"
    api = api_client_for("client")
    assert [api.get("/api/v1/licences/").status_code for _ in range(6)] == [200] * 5 + [429]


def test_anonymous_callers_are_throttled_per_address_with_lower_rates(low_rates, client):
    assert [client.get("/api/v1/licences/").status_code for _ in range(3)] == [200, 200, 429]
    assert client.get("/api/v1/licences/", REMOTE_ADDR="10.0.0.9").status_code == 200


def test_cors_answers_only_allowed_origins_and_only_under_api(settings, client, db):
    settings.CORS_ALLOWED_ORIGINS = ["https://course.example.org"]
    allowed = client.get("/api/v1/licences/", HTTP_ORIGIN="https://course.example.org")
    assert allowed["Access-Control-Allow-Origin"] == "https://course.example.org"
    assert "Access-Control-Allow-Origin" not in client.get("/api/v1/licences/", HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in client.get("/coverage/", HTTP_ORIGIN="https://course.example.org")
    preflight = client.options(
        "/api/v1/exports/",
        HTTP_ORIGIN="https://course.example.org",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization",
    )
    assert preflight.status_code == 200
    assert preflight["Access-Control-Allow-Origin"] == "https://course.example.org"
    assert "authorization" in preflight["Access-Control-Allow-Headers"]
    refused = client.options(
        "/api/v1/exports/", HTTP_ORIGIN="https://evil.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
    )
    assert "Access-Control-Allow-Origin" not in refused


# --- which address counts (TRUSTED_PROXIES) and photo search ---------------------------------


def test_a_forged_x_forwarded_for_does_not_reset_the_anonymous_count(low_rates, client):
    # No proxy is trusted by default: the header is the client's own writing.
    statuses = [client.get("/api/v1/licences/", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code for n in range(3)]
    assert statuses == [200, 200, 429]


@pytest.mark.parametrize(
    ("trusted", "remote", "forwarded", "client"),
    [
        (0, "10.0.0.2", "203.0.113.7", "10.0.0.2"),  # default: the peer
        (1, "10.0.0.2", "forged, 203.0.113.7", "203.0.113.7"),  # one proxy appended the client
        (2, "10.0.0.2", "forged, 203.0.113.7, 10.0.0.9", "203.0.113.7"),
        (2, "203.0.113.9", "forged", "203.0.113.9"),  # fewer hops than proxies: only the peer counts
        (("10.0.0.0/8",), "10.0.0.2", "forged, 198.51.100.4, 10.0.0.9", "198.51.100.4"),
        (("10.0.0.0/8",), "198.51.100.5", "203.0.113.7", "198.51.100.5"),  # not through our proxy
        (("10.0.0.0/8",), "10.0.0.2", "not-an-address", "10.0.0.2"),
        (("10.0.0.0/8", "2001:db8::/32"), "2001:db8::1", "198.51.100.4, 10.1.1.1, 2001:db8::2", "198.51.100.4"),
    ],
)
def test_trusted_proxies_decide_which_address_counts(settings, rf, trusted, remote, forwarded, client):
    from atlas.clients import client_address

    settings.TRUSTED_PROXIES = trusted
    request = rf.get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_address(request) == client


def test_behind_a_trusted_proxy_each_client_counts_apart(low_rates, client, settings):
    settings.TRUSTED_PROXIES = 1
    via_proxy = {"REMOTE_ADDR": "10.0.0.2"}
    assert [client.get("/api/v1/licences/", HTTP_X_FORWARDED_FOR="forged, 203.0.113.7", **via_proxy).status_code
            for _ in range(3)] == [200, 200, 429]
    assert client.get("/api/v1/licences/", HTTP_X_FORWARDED_FOR="203.0.113.8", **via_proxy).status_code == 200


@pytest.fixture
def photo_rates(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"burst": "100/min", "sustained": "100/day", "anon_burst": "100/min",
                                   "anon_sustained": "100/day", "photo": "3/min", "anon_photo": "2/min"},
    }


def test_anonymous_api_photo_search_is_allowed_at_its_own_lower_rate(photo_rates, client):
    # Policy: anyone may search by photo, anonymous callers at the anon_photo rate per address.
    statuses = [client.post("/api/v1/search/", {}).status_code for _ in range(3)]
    assert statuses[:2] == [400, 400] and statuses[2] == 429  # 400: no image sent; counted all the same
    assert client.get("/api/v1/search/", {"q": "x"}).status_code != 429  # text search: not the photo count


def test_the_web_photo_search_is_throttled_with_the_api_count(photo_rates, client):
    assert client.post("/api/v1/search/", {}).status_code == 400
    assert client.post("/search/photo/", {}).status_code == 400
    refused = client.post("/search/photo/", {})
    assert refused.status_code == 429 and 1 <= int(refused["Retry-After"]) <= 60
    assert b"Too many photo searches" in refused.content
    assert client.post("/search/photo/", {}, REMOTE_ADDR="192.0.2.1").status_code == 400  # another address


def test_clients_with_a_token_get_the_photo_rate(photo_rates, api_client_for):
    api = api_client_for("client")
    assert [api.post("/api/v1/search/", {}).status_code for _ in range(4)] == [400, 400, 400, 429]
