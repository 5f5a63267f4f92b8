"""Licence-aware exports end to end: API -> ExportJob -> Celery task (eager) -> zip -> download."""

from __future__ import annotations

import csv
import json
import io
import zipfile

import pytest

from atlas.services.exports import export_job_run
from atlas.models import Condition, ExportJob
from atlas.services.ingestion import image_ingest
from tests.api.conftest import assert_error
from tests.conftest import make_image_bytes

pytestmark = pytest.mark.django_db

LICENCES = ["CC-BY-4.0", "CC0-1.0", "CC-BY-NC-4.0", "CC-BY-ND-4.0", "LicenseRef-DDI-Research-Use-Agreement", "All-rights-reserved"]


@pytest.fixture
def licensed(source):
    """One melanoma image per licence (type V), and one tinea image that no filter below selects."""
    images = {}
    for seed, licence in enumerate(LICENCES, start=1):
        images[licence] = image_ingest(
            file=make_image_bytes(seed=seed, fmt="PNG"),
            condition=Condition.objects.get(slug="melanoma"),
            source=source,
            fitzpatrick_type=5,
            licence=licence,
            attribution=f"Photo {seed} by Dr Example",
            enqueue_followups=False,
        ).image
    image_ingest(
        file=make_image_bytes(seed=99), condition=Condition.objects.get(slug="tinea"), source=source, enqueue_followups=False
    )
    return images


def _export(api, capture, **body) -> dict:
    with capture(execute=True):
        response = api.post("/api/v1/exports/", body, format="json")
    assert response.status_code == 202, response.content
    job = api.get(response.json()["url"]).json()
    assert job["status"] == "succeeded", job
    return job


def _zip(api, job) -> zipfile.ZipFile:
    response = api.get(job["download"])
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert "attachment" in response["Content-Disposition"]
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_a_commercial_export_with_derivatives_leaves_out_what_the_licences_forbid(
    api_client_for, licensed, django_capture_on_commit_callbacks
):
    api = api_client_for("client")
    job = _export(api, django_capture_on_commit_callbacks, condition=["melanoma"], fitzpatrick=[5, 6], commercial=True, derivatives=True)
    assert job["image_count"] == 2 and job["size_bytes"] > 0
    reasons = {item["licence"]: item["reason"] for item in job["excluded"]}
    assert set(reasons) == {"CC-BY-NC-4.0", "CC-BY-ND-4.0", "LicenseRef-DDI-Research-Use-Agreement", "All-rights-reserved"}
    assert "commercial" in reasons["CC-BY-NC-4.0"] and "derivatives" in reasons["CC-BY-ND-4.0"]
    assert "redistribution" in reasons["LicenseRef-DDI-Research-Use-Agreement"] and "unknown" in reasons["All-rights-reserved"]

    archive = _zip(api, job)
    names = set(archive.namelist())
    kept = {licensed["CC-BY-4.0"], licensed["CC0-1.0"]}
    assert {f"images/{i.public_id}.png" for i in kept} <= names
    assert {"metadata.csv", "attribution.txt", "excluded.csv", "README.txt", "licences/CC-BY-4.0.txt", "licences/CC0-1.0.txt"} <= names
    assert len([n for n in names if n.startswith("images/")]) == 2
    for image in kept:  # the stored files, byte for byte
        assert archive.read(f"images/{image.public_id}.png") == image.file.open("rb").read()
    rows = list(csv.DictReader(io.StringIO(archive.read("metadata.csv").decode())))
    assert {(r["public_id"], r["licence"], r["fitzpatrick_type"]) for r in rows} == {(str(i.public_id), i.licence, "5") for i in kept}
    attribution = archive.read("attribution.txt").decode()
    assert all(i.attribution in attribution for i in kept) and "Photo 3" not in attribution
    excluded = list(csv.DictReader(io.StringIO(archive.read("excluded.csv").decode())))
    assert len(excluded) == 4
    assert "creativecommons.org/licenses/by/4.0" in archive.read("licences/CC-BY-4.0.txt").decode()


def test_a_non_commercial_unchanged_export_keeps_nc_and_nd_images(api_client_for, licensed, django_capture_on_commit_callbacks):
    job = _export(api_client_for("client"), django_capture_on_commit_callbacks, condition=["melanoma"])
    assert job["image_count"] == 4
    assert {item["licence"] for item in job["excluded"]} == {"LicenseRef-DDI-Research-Use-Agreement", "All-rights-reserved"}
    assert job["filters"]["conditions"] == ["melanoma"]


def test_an_unfinished_export_cannot_be_downloaded(api_client_for, licensed, django_capture_on_commit_callbacks):
    api = api_client_for("client")
    response = api.post("/api/v1/exports/", {"condition": ["melanoma"]}, format="json")  # on_commit not run: queued
    assert response.json()["status"] == "queued" and response.json()["download"] is None
    assert_error(api.get(f"/api/v1/exports/{response.json()['public_id']}/download/"), 409, "not_ready")
    job = export_job_run(job_id=ExportJob.objects.get().pk)
    assert job.status == "succeeded" and job.image_count == 4
    assert export_job_run(job_id=job.pk).finished_at == job.finished_at  # idempotent: a finished job is left alone


def test_too_large_an_export_is_refused_before_it_is_queued(api_client_for, licensed, settings):
    settings.API_EXPORT_MAX_IMAGES = 3
    assert_error(api_client_for("client").post("/api/v1/exports/", {}, format="json"), 400, "too_many_images")
    assert ExportJob.objects.count() == 0


def test_an_export_that_fails_records_why(api_client_for, licensed, monkeypatch, django_capture_on_commit_callbacks):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("atlas.services.exports._write_zip", broken)
    api = api_client_for("client")
    with django_capture_on_commit_callbacks(execute=True):
        url = api.post("/api/v1/exports/", {}, format="json").json()["url"]
    job = api.get(url).json()
    assert job["status"] == "failed" and "disk full" in job["error"] and job["download"] is None


def test_metadata_carries_what_a_teacher_reuses_and_attribution_names_each_licence(
    api_client_for, licensed, source, django_capture_on_commit_callbacks
):
    from atlas.services.ingestion import Box
    from tests.conftest import approved

    melanoma = Condition.objects.get(slug="melanoma")
    synthetic = approved(image_ingest(
        file=make_image_bytes(seed=77, fmt="PNG"), condition=melanoma, source=source, origin="synthetic", fitzpatrick_type=6,
        licence="CC-BY-4.0", attribution="Atlas DermGAN.", provenance={"model": "dermgan"}, regions=[Box(2, 3, 10, 12, "lesion")],
        enqueue_followups=False,
    ).image)  # fmt: skip
    api = api_client_for("client")
    archive = _zip(api, _export(api, django_capture_on_commit_callbacks, condition=["melanoma"], fitzpatrick=[5, 6]))
    rows = {r["public_id"]: r for r in csv.DictReader(io.StringIO(archive.read("metadata.csv").decode()))}
    for row in rows.values():
        assert row["condition_summary"] == melanoma.summary and "pigment cells" in row["condition_summary"]
    real = rows[str(licensed["CC-BY-4.0"].public_id)]
    assert (real["is_synthetic"], real["fitzpatrick_label_source"], json.loads(real["regions"])) == ("false", "", [])
    fake = rows[str(synthetic.public_id)]
    assert fake["is_synthetic"] == "true" and fake["origin"] == "synthetic"
    assert json.loads(fake["regions"]) == [{"x": 2, "y": 3, "width": 10, "height": 12, "label": "lesion"}]

    lines = {line.split(":", 1)[0]: line for line in archive.read("attribution.txt").decode().splitlines() if line.startswith("images/")}
    by = licensed["CC-BY-4.0"]
    assert lines[f"images/{by.public_id}.png"] == (
        f"images/{by.public_id}.png: Photo 1 by Dr Example. Licensed under Creative Commons Attribution 4.0 International "
        "(CC BY 4.0), https://creativecommons.org/licenses/by/4.0/legalcode."
    )
    nc = licensed["CC-BY-NC-4.0"]
    assert "Licensed under Creative Commons Attribution-NonCommercial 4.0 International (CC BY-NC 4.0)" in lines[f"images/{nc.public_id}.png"]
    assert "Dedicated to the public domain under CC0 1.0 Universal, https://" in lines[f"images/{licensed['CC0-1.0'].public_id}.png"]
    assert lines[f"images/{synthetic.public_id}.png"].startswith(f"images/{synthetic.public_id}.png: Atlas DermGAN. Licensed under")
    assert lines[f"images/{synthetic.public_id}.png"].endswith("Synthetic image generated by a GAN, not a photograph of a patient.")
    assert not any(".." in line.replace("https://", "") for line in lines.values())
