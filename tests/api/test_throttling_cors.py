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
