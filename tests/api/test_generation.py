"""Gap-filling jobs over the API (staff): plan, create, list, detail with progress, cancel."""

from __future__ import annotations

import pytest

from generation.models import GenerationJob
from tests.api.conftest import assert_error
from tests.generation.gaps_helpers import small_catalogue

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(api_client_for, source, gan_checkpoint):
    small_catalogue(source)
    return api_client_for("staff")


def test_plan_lists_deficits_and_writes_nothing(staff):
    plan = staff.get("/api/v1/generation/plan/?target=2&condition=melanoma&fitzpatrick=5,6").json()
    assert plan["total"] == 4 and plan["checkpoint"]
    assert {(c["condition"], c["skin_type"], c["count"]) for c in plan["cells"]} == {("melanoma", 5, 2), ("melanoma", 6, 2)}
    assert GenerationJob.objects.count() == 0


def test_create_then_watch_then_cancel(staff):
    response = staff.post(
        "/api/v1/generation/jobs/", {"target": 2, "condition": ["melanoma"], "fitzpatrick": [6], "seed": 7}, format="json"
    )
    assert response.status_code == 201, response.content
    job = response.json()
    assert (job["status"], job["planned"], job["stored"], job["percent"]) == ("queued", 2, 0, 0)
    assert job["cells"] == [{"condition": "melanoma", "skin_type": 6, "planned": 2, "stored": 0, "closed": False,
                             "note": "", "drawn": 0, "passed": 0, "failed": {}, "max_draws": 8}]  # gates off here
    assert staff.get(job["url"]).json()["id"] == job["id"]
    assert [j["id"] for j in staff.get("/api/v1/generation/jobs/").json()["results"]] == [job["id"]]
    cancelled = staff.post(f"/api/v1/generation/jobs/{job['id']}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert_error(staff.post(f"/api/v1/generation/jobs/{job['id']}/cancel/"), 409, "not_active")


def test_a_job_runs_end_to_end_on_the_eager_queue(staff, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = staff.post("/api/v1/generation/jobs/", {"target": 1, "condition": ["psoriasis"], "fitzpatrick": [6]}, format="json").json()
    done = staff.get(job["url"]).json()
    assert (done["status"], done["stored"], done["percent"]) == ("succeeded", 1, 100)
    synthetic = staff.get("/api/v1/images/?condition=psoriasis&fitzpatrick=6&origin=synthetic").json()["results"]
    assert len(synthetic) == 1 and synthetic[0]["is_synthetic"] and synthetic[0]["provenance"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"target": 0}, 400, "invalid"),
        ({"target": 2, "fitzpatrick": [7]}, 400, "invalid"),
        ({"target": 2, "max_synthetic_share": 1.5}, 400, "invalid"),
        ({"target": 2, "condition": ["nope"]}, 400, "invalid"),
        ({"target": 1, "condition": ["melanoma"], "fitzpatrick": [1]}, 409, "gap_refused"),  # nothing to do
    ],
)
def test_bad_jobs_are_refused_and_write_nothing(staff, body, status, code):
    assert_error(staff.post("/api/v1/generation/jobs/", body, format="json"), status, code)
    assert GenerationJob.objects.count() == 0


def test_unknown_job_is_404(staff):
    assert_error(staff.get("/api/v1/generation/jobs/999999/"), 404, "not_found")
