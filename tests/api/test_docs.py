"""The OpenAPI schema and the Swagger UI / ReDoc pages, served from local static files."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders

pytestmark = pytest.mark.django_db


def test_the_schema_documents_every_endpoint_and_the_error_shape(client):
    schema = client.get("/api/schema/?format=json").json()
    assert schema["openapi"].startswith("3.")
    paths = set(schema["paths"])
    for path in ("/api/v1/images/", "/api/v1/search/", "/api/v1/uploads/", "/api/v1/exports/", "/api/v1/generation/jobs/"):
        assert path in paths
    images = schema["paths"]["/api/v1/images/"]["get"]
    assert {"200", "400", "429"} <= set(images["responses"])
    assert "Retry-After" in images["responses"]["429"]["headers"]
    assert images["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    assert schema["components"]["securitySchemes"]["ApiToken"]["scheme"] == "bearer"


@pytest.mark.parametrize("page", ["/api/docs/", "/api/redoc/"])
def test_doc_pages_load_their_scripts_from_our_static_files(client, page):
    html = client.get(page).content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css|png))"', html)
    assert assets, html[:500]
    for asset in assets:
        assert asset.startswith("/static/drf_spectacular_sidecar/"), asset
        assert finders.find(asset.removeprefix("/static/")), asset
    assert "cdn" not in html.lower()
