"""API fixtures: clients for the four roles, a small catalogue, the tiny search model."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from atlas.api.tokens import api_token_create
from atlas.models import ApiClient
from tests.search.conftest import add_image, search_settings, tiny_checkpoint  # noqa: F401 - shared fixtures

ROLES = ("anonymous", "client", "contributor", "staff")


def token_for(name: str, user: User | None = None) -> str:
    client = ApiClient.objects.create(name=name, user=user)
    return api_token_create(client=client, name="test")[1]


@pytest.fixture
def api_client_for(db):
    """api_client_for("staff") -> a DRF test client authenticated as that role (by token)."""

    def make(role: str) -> APIClient:
        api = APIClient()
        if role == "anonymous":
            return api
        if role == "client":
            key = token_for("Quiz platform")
        elif role == "contributor":
            user = User.objects.create_user("contributor")
            user.groups.add(Group.objects.get(name="Contributors"))
            key = token_for("Contributor", user)
        elif role == "staff":
            key = token_for("Curators", User.objects.create_user("curator", is_staff=True))
        else:
            raise ValueError(role)
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        return api

    return make


@pytest.fixture
def catalogue(search_settings, add_image):
    """Melanoma on every skin type, tinea on II and V, one synthetic, one hidden; indexed."""
    from search import indexing, query

    images = [add_image("melanoma", skin_type=t) for t in range(1, 7)]
    images += [add_image("tinea", skin_type=t) for t in (2, 5)]
    images.append(add_image("melanoma", skin_type=6, origin="synthetic"))
    images.append(add_image("melanoma", skin_type=5, is_public=False))
    indexing.index_rebuild()
    return images


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"status", "code", "message", "details"}
    assert body["error"]["status"] == status and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


@pytest.fixture
def gan_checkpoint(db, tmp_path_factory):
    """The active tiny DermGAN checkpoint of the gap-filling tests (trained once per session)."""
    from tests.generation.gaps_helpers import tiny_checkpoint

    return tiny_checkpoint(tmp_path_factory.mktemp("gan"))
