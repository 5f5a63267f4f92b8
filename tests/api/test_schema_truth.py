"""The OpenAPI schema says what the API does: enums and patterns where it validates, no null
where none is accepted, empty parameters refused as the schema's lengths say, JSON errors under
/api/ with DEBUG on, and anonymous access declared on public reads (issue 16, finding 12)."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from atlas.models import Condition, Source
from tests.api.conftest import assert_error
from tests.conftest import make_image_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(client, source) -> dict:
    return client.get("/api/schema/?format=json").json()


def parameter(schema: dict, path: str, name: str, method: str = "get") -> dict:
    (found,) = [p for p in schema["paths"][path][method]["parameters"] if p["name"] == name]
    return found["schema"]


def resolve(schema: dict, node: dict) -> dict:
    """A node with its $ref (or a lone allOf $ref, as enums are written) merged in."""
    if len(node.get("allOf", [])) == 1:
        node = {**{k: v for k, v in node.items() if k != "allOf"}, **resolve(schema, node["allOf"][0])}
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def upload_body(schema: dict) -> dict:
    body = schema["paths"]["/api/v1/uploads/"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    return resolve(schema, body)["properties"]


# --- enums and patterns where the API validates ---------------------------------------------


def test_condition_and_source_list_the_values_that_exist(schema):
    conditions = sorted(Condition.objects.public().values_list("slug", flat=True))
    assert parameter(schema, "/api/v1/images/", "condition")["items"]["enum"] == conditions
    assert parameter(schema, "/api/v1/images/", "source")["enum"] == ["test-clinic"]
    assert resolve(schema, upload_body(schema)["condition"])["enum"] == conditions
    assert resolve(schema, upload_body(schema)["source"])["enum"] == sorted(Source.objects.values_list("slug", flat=True))


def test_a_condition_outside_the_enum_is_refused(client, schema):
    assert "no-such-condition" not in parameter(schema, "/api/v1/images/", "condition")["items"]["enum"]
    assert_error(client.get("/api/v1/images/", {"condition": "no-such-condition"}), 400, "invalid")


@pytest.mark.parametrize("cursor", ["n", "r", "n5", "r17-3", "n999999999999999999-9999"])
def test_every_cursor_matching_the_pattern_is_accepted(client, schema, cursor):
    pattern = parameter(schema, "/api/v1/images/", "cursor")["pattern"]
    assert re.fullmatch(pattern, cursor)
    assert client.get("/api/v1/images/", {"cursor": cursor}).status_code == 200


@pytest.mark.parametrize("cursor", ["", "garbage", "cD0xMjM=", "n-", "x5", "n٣"])
def test_a_cursor_outside_the_pattern_is_refused(client, schema, cursor):
    pattern = parameter(schema, "/api/v1/images/", "cursor")["pattern"]
    assert not re.search(pattern, cursor)
    assert_error(client.get("/api/v1/images/", {"cursor": cursor}), 400, "invalid_cursor")


def test_next_links_carry_cursors_that_match_the_pattern(client, schema, add_image):
    for _ in range(3):
        add_image()
    page = client.get("/api/v1/images/", {"page_size": 1}).json()
    cursor = re.search(r"cursor=([^&]+)", page["next"]).group(1)
    assert re.fullmatch(parameter(schema, "/api/v1/images/", "cursor")["pattern"], cursor)
    second = client.get(page["next"]).json()
    assert second["results"][0]["public_id"] != page["results"][0]["public_id"] and second["previous"]


# --- empty values and null --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["source", "condition", "origin", "fitzpatrick", "licence", "page_size"])
def test_an_empty_parameter_is_refused_as_the_schema_says(client, schema, name):
    declared = parameter(schema, "/api/v1/images/", name)
    assert declared.get("minLength", 0) >= 1 or "enum" in declared or declared["type"] in ("integer", "array")
    response = client.get(f"/api/v1/images/?{name}=")
    assert response.status_code == 400, response.content


def test_the_upload_skin_type_is_not_nullable_and_null_is_refused(api_client_for, schema, source):
    fields = upload_body(schema)
    for name in ("fitzpatrick_type", "monk_tone"):
        assert not fields[name].get("nullable") and not resolve(schema, fields[name]).get("nullable") and "null" not in str(fields[name].get("type", ""))
        assert None not in fields[name].get("enum", [])
    body = {"file": SimpleUploadedFile("a.jpg", make_image_bytes(seed=1)), "condition": "melanoma", "source": "test-clinic",
            "fitzpatrick_type": "null"}  # fmt: skip
    assert_error(api_client_for("staff").post("/api/v1/uploads/", body, format="multipart"), 400, "invalid")


@pytest.mark.parametrize("field", ["fitzpatrick_type", "monk_tone", "condition"])
def test_an_empty_upload_field_is_refused(api_client_for, source, field):
    body = {"file": SimpleUploadedFile("a.jpg", make_image_bytes(seed=2)), "condition": "melanoma", "source": "test-clinic",
            field: ""}  # fmt: skip
    assert_error(api_client_for("staff").post("/api/v1/uploads/", body, format="multipart"), 400, "invalid")


@pytest.mark.parametrize("body", [{"licence": 0}, {"fitzpatrick": [True]}, {"condition": "melanoma"}, {"origin": 1}])
def test_json_bodies_carry_the_schema_s_types(api_client_for, source, body):
    assert_error(api_client_for("staff").post("/api/v1/exports/", body, format="json"), 400, "invalid")


def test_booleans_are_true_or_false_as_the_schema_says(api_client_for, source):
    api = api_client_for("staff")
    assert_error(api.post("/api/v1/exports/", {"derivatives": "0"}), 400, "invalid")
    assert api.post("/api/v1/exports/", {"derivatives": "false"}).status_code == 202
    assert_error(api.post("/api/v1/exports/", {"derivatives": 0}, format="json"), 400, "invalid")
    assert api.post("/api/v1/exports/", {"derivatives": True}, format="json").status_code == 202


# --- JSON errors under /api/, DEBUG on too -------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/images/not-a-uuid/", "/api/v1/similar/123/", "/api/v1/no-such-thing/"])
def test_with_debug_on_a_malformed_id_is_a_json_404(client, settings, path, db):
    settings.DEBUG = True
    assert_error(client.get(path), 404, "not_found")


def test_with_debug_on_pages_outside_the_api_keep_django_s_debug_page(client, settings, db):
    settings.DEBUG = True
    response = client.get("/images/not-a-uuid/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


# --- anonymous access is declared where it is allowed ---------------------------------------


@pytest.mark.parametrize(
    ("path", "method", "anonymous"),
    [
        ("/api/v1/conditions/", "get", True),
        ("/api/v1/images/", "get", True),
        ("/api/v1/images/{public_id}/", "get", True),
        ("/api/v1/search/", "get", True),
        ("/api/v1/uploads/", "post", False),
        ("/api/v1/exports/", "get", False),
        ("/api/v1/generation/jobs/", "get", False),
    ],
)
def test_public_reads_declare_anonymous_access(schema, path, method, anonymous):
    security = schema["paths"][path][method]["security"]
    assert ({} in security) is anonymous
    assert {"ApiToken": []} in security


def test_the_search_text_pattern_is_what_search_accepts(client, schema):
    pattern = parameter(schema, "/api/v1/search/", "q")["pattern"]
    for refused in ("acne\x1b[31m", "   ", "melanoma\u200b"):
        assert not re.search(pattern, refused)
        assert client.get("/api/v1/search/", {"q": refused}).status_code == 400
    assert re.search(pattern, "psoriasis on dark skin")
