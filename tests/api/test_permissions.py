"""Who may call what: every endpoint and method for anonymous, token client, contributor, staff."""

from __future__ import annotations

import pytest

from generation.models import GenerationJob
from tests.api.conftest import ROLES, assert_error
from tests.conftest import make_image_bytes

pytestmark = pytest.mark.django_db

A, C, K, S = ROLES  # anonymous, client (platform token), contributor, staff
ALL_OK = {A: 200, C: 200, K: 200, S: 200}
TOKEN_ONLY = {A: 401, C: 200, K: 200, S: 200}
NOBODY = {A: 405, C: 405, K: 405, S: 405}
STAFF_ONLY = {A: 401, C: 403, K: 403, S: 200}

# (method, path, expected status per role). {image} / {export} are filled in per test.
MATRIX = [
    ("get", "/api/v1/conditions/", ALL_OK),
    ("post", "/api/v1/conditions/", NOBODY),
    ("get", "/api/v1/conditions/melanoma/", ALL_OK),
    ("delete", "/api/v1/conditions/melanoma/", NOBODY),
    ("get", "/api/v1/coverage/", ALL_OK),
    ("get", "/api/v1/licences/", ALL_OK),
    ("get", "/api/v1/images/", ALL_OK),
    ("post", "/api/v1/images/", NOBODY),
    ("get", "/api/v1/images/{image}/", ALL_OK),
    ("put", "/api/v1/images/{image}/", NOBODY),
    ("patch", "/api/v1/images/{image}/", NOBODY),
    ("delete", "/api/v1/images/{image}/", NOBODY),
    ("get", "/api/v1/search/?q=melanoma", ALL_OK),
    ("post", "/api/v1/search/", ALL_OK),  # search by photo is a read
    ("delete", "/api/v1/search/", NOBODY),
    ("get", "/api/v1/similar/{image}/", ALL_OK),
    ("post", "/api/v1/similar/{image}/", NOBODY),
    ("post", "/api/v1/uploads/", {A: 401, C: 403, K: 201, S: 201}),
    ("get", "/api/v1/uploads/", NOBODY),
    ("post", "/api/v1/decks/audit/", ALL_OK),  # a deck audit is a read of public data
    ("get", "/api/v1/decks/audit/", NOBODY),
    ("delete", "/api/v1/decks/audit/", NOBODY),
    ("get", "/api/v1/exports/", TOKEN_ONLY),
    ("post", "/api/v1/exports/", {A: 401, C: 202, K: 202, S: 202}),
    ("get", "/api/v1/exports/{export}/", TOKEN_ONLY),
    ("delete", "/api/v1/exports/{export}/", NOBODY),
    ("get", "/api/v1/exports/{export}/download/", TOKEN_ONLY),
    ("get", "/api/v1/generation/plan/?target=2", STAFF_ONLY),
    ("get", "/api/v1/generation/jobs/", STAFF_ONLY),
    ("post", "/api/v1/generation/jobs/", {**STAFF_ONLY, S: 201}),
    ("get", "/api/v1/generation/jobs/{job}/", STAFF_ONLY),
    ("delete", "/api/v1/generation/jobs/{job}/", NOBODY),
    ("post", "/api/v1/generation/jobs/{job}/cancel/", STAFF_ONLY),
    ("get", "/api/v1/generation/jobs/{job}/cancel/", NOBODY),
    ("get", "/api/schema/", ALL_OK),
    ("get", "/api/docs/", ALL_OK),
    ("get", "/api/redoc/", ALL_OK),
]


def _body(method: str, path: str, seed: int) -> dict:
    if path.endswith("/uploads/") and method == "post":
        return {"file": _file(seed), "condition": "melanoma", "source": "test-clinic", "fitzpatrick_type": 5}
    if path.endswith("/search/") and method == "post":
        return {"image": _file(seed), "k": 3}
    if path.endswith("/exports/") and method == "post":
        return {"condition": ["melanoma"], "commercial": "false"}
    if path.endswith("/decks/audit/") and method == "post":
        return {"cards": [{"condition": "tinea", "count": 2, "fitzpatrick_type": 2}]}  # + the image, below
    if path.endswith("/generation/jobs/") and method == "post":
        return {"target": 3, "condition": ["melanoma"], "fitzpatrick": [5, 6]}
    return {}


def _file(seed: int):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("photo.png", make_image_bytes(seed=1000 + seed, fmt="PNG"), content_type="image/png")


@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix(role, catalogue, gan_checkpoint, api_client_for, django_capture_on_commit_callbacks):
    api = api_client_for(role)
    image = catalogue[0].public_id
    job = GenerationJob.objects.create(checkpoint=gan_checkpoint, target=1, seed=1, plan=[]).pk
    # Each role reads its own export; anonymous asks for staff's (and must not get it).
    owner = api if role != A else api_client_for(S)
    with django_capture_on_commit_callbacks(execute=True):
        export = owner.post("/api/v1/exports/", {"condition": ["tinea"]}, format="multipart").json()["public_id"]
    failures = []
    for seed, (method, path, expected) in enumerate(MATRIX):
        url = path.format(image=image, export=export, job=job)
        with django_capture_on_commit_callbacks(execute=not path.startswith("/api/v1/generation")):
            body = _body(method, path, seed)
            if "/decks/" in path:  # JSON only: a deck's card lines are nested
                body = {**body, "images": [str(image)]} if method == "post" else body
                response = getattr(api, method)(url, body, format="json")
            else:
                response = getattr(api, method)(url, body, format="multipart")
        if response.status_code != expected[role]:
            failures.append(f"{method.upper()} {url}: {response.status_code}, expected {expected[role]}")
        elif response.status_code >= 400:
            assert_error(response, expected[role])
    assert not failures, "\n".join(failures)


def test_a_client_never_sees_another_clients_exports(catalogue, api_client_for):
    mine = api_client_for(C).post("/api/v1/exports/", {"condition": ["tinea"]}).json()
    other = api_client_for(K)
    assert_error(other.get(f"/api/v1/exports/{mine['public_id']}/"), 404, "not_found")
    assert_error(other.get(f"/api/v1/exports/{mine['public_id']}/download/"), 404, "not_found")
    assert other.get("/api/v1/exports/").json()["results"] == []
    assert [job["public_id"] for job in api_client_for(S).get("/api/v1/exports/").json()["results"]] == [mine["public_id"]]


def test_revoked_expired_and_unknown_tokens_are_refused(db, api_client_for):
    from datetime import timedelta

    from django.utils import timezone

    from atlas.api.tokens import api_token_create, api_token_revoke
    from atlas.models import ApiClient, ApiToken

    client = ApiClient.objects.create(name="Platform")
    token, key = api_token_create(client=client)
    api = api_client_for(A)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api.get("/api/v1/exports/").status_code == 200
    assert ApiToken.objects.get().last_used_at is not None
    assert key not in str(ApiToken.objects.values_list()), "the key itself is never stored"
    api_token_revoke(token=token)
    assert_error(api.get("/api/v1/exports/"), 401, "invalid_token")
    assert_error(api.get("/api/v1/conditions/"), 401, "invalid_token")  # a bad token is an error even on reads
    _, key = api_token_create(client=client, expires_at=timezone.now() - timedelta(seconds=1))
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert_error(api.get("/api/v1/exports/"), 401, "invalid_token")
    _, key = api_token_create(client=client)
    client.is_active = False
    client.save()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert_error(api.get("/api/v1/exports/"), 401, "invalid_token")
    for header in ("Bearer atlas_nope", "Bearer", "Bearer a b", "Bearer \u00e9\u00e9"):
        api.credentials(HTTP_AUTHORIZATION=header)
        assert_error(api.get("/api/v1/images/"), 401)


def test_the_admin_shows_a_new_key_once_and_stores_only_its_hash(admin_client, db):
    from atlas.api.tokens import api_token_authenticate
    from atlas.models import ApiClient, ApiToken

    client = ApiClient.objects.create(name="Course site")
    response = admin_client.post("/admin/atlas/apitoken/add/", {"client": client.pk, "name": "prod"}, follow=True)
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"] if "Copy this key" in str(m)]
    assert len(shown) == 1
    key = shown[0].rsplit(" ", 1)[-1]
    token = ApiToken.objects.get()
    assert api_token_authenticate(key) == token and token.key_hash != key and key.startswith(token.prefix)
    page = admin_client.get(f"/admin/atlas/apitoken/{token.pk}/change/").content.decode()
    assert key not in page
