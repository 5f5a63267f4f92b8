"""The review queue pages, and who sees a pending synthetic image where: a permission matrix of
reviewer vs staff vs public user vs anonymous over the pages and the API."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse

from atlas.models import Condition, Image
from atlas.services.ingestion import image_ingest
from tests.conftest import make_image_bytes

pytestmark = pytest.mark.django_db

ROLES = ("reviewer", "staff", "public", "anonymous")


@pytest.fixture
def images(source):
    def ingest(seed: int, origin: str, skin: int) -> Image:
        return image_ingest(
            file=make_image_bytes(seed=seed, fmt="PNG"), condition=Condition.objects.get(slug="melanoma"), source=source,
            origin=origin, fitzpatrick_type=skin, enqueue_followups=False,
            provenance={"model": "DermGAN", "job": 3, "gates": {"condition": {"passed": False, "rank": 5}}}
            if origin == "synthetic" else None,
        ).image

    return {"real": ingest(1, "real", 5), "pending": ingest(2, "synthetic", 6), "other": ingest(3, "synthetic", 6)}


def client_for(role: str) -> Client:
    client = Client()
    if role == "anonymous":
        return client
    user = User.objects.create_user(role, is_staff=role in ("reviewer", "staff"))
    if role == "reviewer":
        user.groups.add(Group.objects.get(name="Reviewers"))
    client.force_login(user)
    return client


# role -> (queue page, decide, pending image page, pending image in API list, API detail)
MATRIX = {
    "reviewer": (200, 302, 200, True, 200),
    "staff": (403, 403, 200, True, 200),
    "public": (403, 403, 404, False, 404),
    "anonymous": (302, 302, 404, False, 404),
}


@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix(images, role):
    queue_status, decide_status, page_status, in_list, api_status = MATRIX[role]
    client = client_for(role)
    pending = images["pending"]
    queue = client.get(reverse("generation:review_queue"))
    assert queue.status_code == queue_status
    if role == "anonymous":
        assert "/login" in queue["Location"] or "login" in queue["Location"]
    decided = client.post(reverse("generation:review_decide"), {"decide": f"approve {pending.public_id}"})
    assert decided.status_code == decide_status
    pending.refresh_from_db()
    assert pending.review_state == ("approved" if role == "reviewer" else "pending")
    if role == "reviewer":  # the rest of the matrix is about an image still pending
        pending = images["other"]
    page = client.get(reverse("atlas:image_detail", args=[pending.public_id]))
    assert page.status_code == page_status
    if page_status == 200:
        assert b"PENDING REVIEW" in page.content
    listed = {row["public_id"] for row in client.get("/api/v1/images/").json()["results"]}
    assert (str(pending.public_id) in listed) is in_list and str(images["real"].public_id) in listed
    detail = client.get(f"/api/v1/images/{pending.public_id}/")
    assert detail.status_code == api_status
    if api_status == 200:
        assert detail.json()["review_state"] == "pending"
    coverage = client.get("/api/v1/coverage/").json()
    melanoma = next(row for row in coverage["conditions"] if row["slug"] == "melanoma")
    assert melanoma["cells"]["6"]["synthetic"] == (1 if role == "reviewer" else 0)  # approved ones only
    assert melanoma["pending"]["6"] == (1 if role == "reviewer" else 2)  # shown apart


def test_queue_shows_the_image_its_references_and_its_gates(images):
    client = client_for("reviewer")
    page = client.get(reverse("generation:review_queue"))
    html = page.content.decode()
    assert page.status_code == 200 and html.count("data-review-card") == 2
    assert str(images["pending"].public_id) in html and images["real"].thumbnail.url in html
    assert "gate-fail" in html and "condition" in html  # the gate that failed is shown as failed
    assert 'data-waiting>2<' in html


def test_a_card_button_decides_one_and_a_batch_decides_the_checked(images):
    client = client_for("reviewer")
    response = client.post(reverse("generation:review_decide"),
                           {"decide": f"reject {images['pending'].public_id}", "reason": "no melanoma visible"}, follow=True)
    assert "1 image rejected." in response.content.decode()
    response = client.post(reverse("generation:review_decide"),
                           {"decision": "approve", "image": [str(images["pending"].public_id), str(images["other"].public_id)]},
                           follow=True)
    html = response.content.decode()
    assert "1 image approved." in html and "already rejected by reviewer" in html
    assert list(Image.objects.public().synthetic()) == [images["other"]]
    assert "Nothing to review" in html


def test_refusals_are_shown_and_change_nothing(images):
    client = client_for("reviewer")
    response = client.post(reverse("generation:review_decide"),
                           {"decide": f"reject {images['pending'].public_id}"}, follow=True)
    assert "Say why the image is rejected" in response.content.decode()
    response = client.post(reverse("generation:review_decide"), {"decide": f"approve {images['real'].public_id}"}, follow=True)
    assert "only synthetic images are reviewed" in response.content.decode()
    assert Image.objects.filter(review_state="pending").count() == 2


def test_the_admin_shows_the_review_state_but_only_the_queue_changes_it(images, admin_client):
    page = admin_client.get(reverse("admin:atlas_image_change", args=[images["pending"].pk])).content.decode()
    assert "Pending review" in page and 'name="review_state"' not in page
    listing = admin_client.get(reverse("admin:atlas_image_changelist") + "?review_state__exact=pending").content.decode()
    assert str(images["pending"].public_id)[:8] in listing and str(images["real"].public_id)[:8] not in listing
