"""One JSON error shape everywhere, whatever failed and wherever."""

from __future__ import annotations

import base64

import pytest
from django.test import RequestFactory

from atlas.api import errors
from tests.api.conftest import assert_error

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/v1/nothing-here/", 404, "not_found"),
        ("/api/v1/images/not-a-uuid/", 404, "not_found"),
        ("/api/v1/images/00000000-0000-0000-0000-000000000000/", 404, "not_found"),
        ("/api/v1/similar/00000000-0000-0000-0000-000000000000/", 404, "not_found"),
        ("/api/v1/conditions/no-such-condition/", 404, "not_found"),
        ("/api/v1/images/?fitzpatrick=7", 400, "invalid"),
        ("/api/v1/images/?fitzpatrick=V", 400, "invalid"),
        ("/api/v1/images/?condition=no-such-condition", 400, "invalid"),
        ("/api/v1/images/?origin=painted", 400, "invalid"),
        ("/api/v1/images/?source=nowhere", 400, "invalid"),
        ("/api/v1/images/?cursor=garbage", 400, "invalid_cursor"),
        ("/api/v1/images/?page_size=0", 400, "invalid_page_size"),
        ("/api/v1/images/?page_size=%C2%B2", 400, "invalid_page_size"),
        ("/api/v1/search/", 400, "invalid"),
        ("/api/v1/search/?q=melanoma&k=0", 400, "invalid"),
        ("/api/v1/search/?q=%20%20", 400, "invalid"),
        ("/api/v1/exports/", 401, "not_authenticated"),
    ],
)
def test_client_errors_share_the_shape(client, path, status, code):
    error = assert_error(client.get(path), status, code)
    if code == "invalid":
        assert isinstance(error["details"], dict) and error["details"]


@pytest.mark.parametrize("raw", ["p=abc", "p=1.5", "p=", "r=1&p=%00", "p=-1", "p=99999999999999999999999", "o=-1", "o=x"])
def test_hand_made_cursors_are_400_not_500(client, raw):
    cursor = base64.b64encode(raw.encode()).decode()
    assert_error(client.get("/api/v1/images/", {"cursor": cursor}), 400, "invalid_cursor")


def test_validation_errors_name_the_field(client):
    error = assert_error(client.get("/api/v1/images/?fitzpatrick=7&condition=nope"), 400, "invalid")
    assert set(error["details"]) == {"fitzpatrick", "condition"}


def test_wrong_method_and_media_type(api_client_for):
    assert_error(api_client_for("anonymous").delete("/api/v1/images/"), 405, "method_not_allowed")
    staff = api_client_for("staff")
    assert_error(staff.post("/api/v1/uploads/", {"condition": "melanoma"}, format="json"), 415, "unsupported_media_type")
    assert_error(
        staff.generic("POST", "/api/v1/exports/", "{not json", content_type="application/json"), 400, "parse_error"
    )


def test_search_without_an_index_is_503_not_500(client, search_settings, add_image):
    add_image("melanoma")  # stored, never embedded: nothing to search
    assert_error(client.get("/api/v1/search/?q=melanoma"), 503, "search_unavailable")


def test_an_unexpected_exception_answers_json_500_under_api(client, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("atlas.api.views.coverage_matrix", broken)
    client.raise_request_exception = False
    error = assert_error(client.get("/api/v1/coverage/"), 500, "server_error")
    assert "boom" not in error["message"]


def test_django_error_views_answer_json_only_under_api():
    factory = RequestFactory()
    for handler, status in ((errors.handler400, 400), (errors.handler403, 403), (errors.handler404, 404)):
        assert handler(factory.get("/api/v1/x"), Exception()).status_code == status
        assert handler(factory.get("/api/v1/x"), Exception())["Content-Type"] == "application/json"
        assert "json" not in handler(factory.get("/coverage/"), Exception())["Content-Type"]
    assert errors.handler500(factory.get("/api/v1/x"))["Content-Type"] == "application/json"
    assert "json" not in errors.handler500(factory.get("/"))["Content-Type"]
