"""The "Fill gaps" staff pages, the status endpoint and the admin: who may do what."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from generation.gaps import GapPolicy, generation_job_create, generation_job_run
from generation.models import GenerationJob

from .gaps_helpers import small_catalogue, tiny_checkpoint


@pytest.fixture(autouse=True)
def gan_settings(tmp_path, settings):
    settings.GAN_ROOT = tmp_path / "gan"
    settings.GAN_DEVICE = "cpu"
    settings.GAP_FILL_BATCH_SIZE = 4


@pytest.fixture
def job(source, tmp_path_factory):
    small_catalogue(source)
    tiny_checkpoint(tmp_path_factory.getbasetemp())
    return generation_job_create(policy=GapPolicy(target=2, conditions=("melanoma",), skin_types=(6,)), enqueue=False)


@pytest.fixture
def staff(db, client):
    user = get_user_model().objects.create_user("curator", password="pw", is_staff=True)
    client.force_login(user)
    return user


@pytest.fixture
def member(db, client):
    user = get_user_model().objects.create_user("member", password="pw")
    client.force_login(user)
    return user


START = {"conditions": ["melanoma"], "skin_types": ["5"], "target": "2"}


def _requests(job: GenerationJob) -> list[tuple[str, str, dict]]:
    return [
        ("get", reverse("generation:fill_gaps"), {}),
        ("get", reverse("generation:fill_gaps"), {"target": "2", "skin_types": "6"}),
        ("post", reverse("generation:fill_gaps"), START),
        ("get", reverse("generation:job_detail", args=[job.pk]), {}),
        ("get", reverse("generation:job_status", args=[job.pk]), {}),
        ("post", reverse("generation:job_cancel", args=[job.pk]), {}),
    ]


def test_anonymous_visitors_are_sent_to_the_login_page(client, job):
    for method, url, data in _requests(job):
        response = getattr(client, method)(url, data)
        if url.endswith(".json"):
            assert response.status_code == 403, url
        else:
            assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login")), url
    assert GenerationJob.objects.get() == job and job.status == "queued"


def test_logged_in_non_staff_get_403_and_change_nothing(client, member, job):
    for method, url, data in _requests(job):
        assert getattr(client, method)(url, data).status_code == 403, url
    job.refresh_from_db()
    assert GenerationJob.objects.count() == 1 and job.status == "queued"


def test_staff_plan_start_watch_and_cancel(client, staff, job, django_capture_on_commit_callbacks):
    page = client.get(reverse("generation:fill_gaps"), {"conditions": "melanoma", "skin_types": ["5", "6"], "target": "3"})
    assert page.status_code == 200
    plan = page.context["plan"]
    assert plan.total == 6 and b"Start: generate 6 images" in page.content
    with django_capture_on_commit_callbacks() as enqueued:
        started = client.post(reverse("generation:fill_gaps"), START)
    new = GenerationJob.objects.exclude(pk=job.pk).get()
    assert started.status_code == 302 and started["Location"] == reverse("generation:job_detail", args=[new.pk])
    assert new.requested_by == staff and new.planned_total == 2 and len(enqueued) == 1

    generation_job_run(job_id=job.pk)
    detail = client.get(reverse("generation:job_detail", args=[job.pk]))
    assert detail.status_code == 200 and b"Succeeded" in detail.content
    cell = detail.context["cells"][0]
    # The two images wait for review: stored and counted toward the job, not public yet.
    assert (cell.before, cell.after, cell.stored) == ((0, 0), (0, 0), 2)
    assert GenerationJob.objects.get(pk=job.pk).after["melanoma:6"]["pending"] == 2
    search = detail.context["search"]  # pending review: not visible, so not searchable yet
    assert search["visible"] == 0
    assert b"Synthetic images waiting for review become searchable once approved" in detail.content
    status = client.get(reverse("generation:job_status", args=[job.pk])).json()
    assert status["status"] == "succeeded" and status["stored"] == status["planned"] == 2
    assert status["cells"] == [{"condition": "melanoma", "skin_type": 6, "planned": 2, "stored": 2, "closed": False,
                                "note": "", "drawn": 2, "passed": 2, "failed": {}, "max_draws": 8}]  # gates off here

    cancelled = client.post(reverse("generation:job_cancel", args=[new.pk]))
    assert cancelled.status_code == 302
    new.refresh_from_db()
    assert new.status == "cancelled"
    again = client.post(reverse("generation:job_cancel", args=[new.pk]), follow=True)
    assert b"already cancelled" in again.content


def test_bad_form_input_is_a_400_and_starts_nothing(client, staff, job):
    for data in ({"target": "0", "skin_types": "5"}, {"target": "3"}, {"target": "3", "skin_types": "9"},
                 {"target": "3", "skin_types": "5", "conditions": "dragon-pox"}):
        assert client.get(reverse("generation:fill_gaps"), data).status_code == 400, data
        assert client.post(reverse("generation:fill_gaps"), data).status_code == 400, data
    nothing = client.post(reverse("generation:fill_gaps"), {"target": "1", "skin_types": "1", "conditions": "melanoma"})
    assert nothing.status_code == 400 and b"nothing to generate" in nothing.content
    assert GenerationJob.objects.count() == 1
    assert client.get(reverse("generation:job_detail", args=[999])).status_code == 404
    assert client.get(reverse("generation:job_cancel", args=[job.pk])).status_code == 405


def test_coverage_page_links_staff_to_fill_gaps(client, staff, job):
    assert reverse("generation:fill_gaps").encode() in client.get(reverse("atlas:coverage")).content


def test_admin_lists_jobs_and_cancels_them(admin_client, job):
    changelist = reverse("admin:generation_generationjob_changelist")
    assert admin_client.get(changelist).status_code == 200
    assert admin_client.get(reverse("admin:generation_generationjob_change", args=[job.pk])).status_code == 200
    response = admin_client.post(changelist, {"action": "cancel_jobs", "_selected_action": [job.pk]}, follow=True)
    assert response.status_code == 200
    job.refresh_from_db()
    assert job.status == "cancelled"


def test_admin_fill_again_starts_a_job_for_what_is_still_missing(admin_client, job, django_capture_on_commit_callbacks):
    changelist = reverse("admin:generation_generationjob_changelist")
    with django_capture_on_commit_callbacks() as enqueued:
        admin_client.post(changelist, {"action": "fill_again", "_selected_action": [job.pk]})
    again = GenerationJob.objects.exclude(pk=job.pk).get()
    assert again.plan[0]["condition"] == "melanoma" and again.plan[0]["skin_type"] == 6 and len(enqueued) == 1
