"""Gap filling with the automatic gates on: failing samples are dropped and redrawn, a cell that
cannot be filled ends with its reason, the counts reach the job page, the API and `fill_gaps
--wait`, and a job whose judges are missing refuses to start. Real small models throughout: the
tiny two-step generator of the gap tests, an untrained classifier, a briefly trained encoder."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.urls import reverse

from atlas.models import Image
from atlas.ops.backup import storage_walk
from generation import classifier as clf_mod
from generation import quality
from generation.gaps import GapError, GapPolicy, generation_job_create, generation_job_run
from generation.gating import gates_prepare
from generation.models import GenerationJob, SyntheticSample
from generation.services import catalogue_vocabulary

from .gaps_helpers import small_catalogue, tiny_checkpoint

# The tiny generator's samples are nearly flat (L* standard deviation about 0.15-0.24): a flatness
# threshold in that range makes the defects gate fail some samples and pass others.
SOME_FLAT = 0.18


@pytest.fixture(autouse=True)
def gan_settings(tmp_path, settings):
    settings.GAN_ROOT = tmp_path / "gan"
    settings.GAN_DEVICE = "cpu"
    settings.GAP_FILL_BATCH_SIZE = 4
    settings.ATLAS_GATES = ["tone", "condition", "copy", "defects"]


@pytest.fixture
def catalogue(source, tmp_path_factory):
    tiny_checkpoint(tmp_path_factory.getbasetemp())
    return small_catalogue(source)


def _files() -> int:
    return len(list(storage_walk(default_storage)))


def _install_untrained_classifier() -> None:
    vocabulary = catalogue_vocabulary()
    net = clf_mod.classifier_build(len(vocabulary))
    clf_mod.save(clf_mod.ConditionClassifier(net.eval(), tuple(vocabulary), 32, 128, {"data_fingerprint": "test"}),
                 quality.classifier_path())


def test_a_job_whose_classifier_is_missing_refuses_to_start(catalogue):
    with pytest.raises(GapError, match=r"condition classifier.*train_condition_classifier"):
        generation_job_create(policy=GapPolicy(target=2, conditions=("melanoma",), skin_types=(6,)), enqueue=False)
    with pytest.raises(Exception, match="train_condition_classifier"):
        call_command("fill_gaps", "--target", "2", "--conditions", "melanoma", "--skin-types", "6", "--wait")
    assert not GenerationJob.objects.exists() and not Image.objects.synthetic().exists()


def test_a_job_whose_encoder_index_is_missing_refuses_to_start(catalogue, settings):
    _install_untrained_classifier()
    with pytest.raises(GapError, match=r"near-copy gate.*prepare_gates"):
        generation_job_create(policy=GapPolicy(target=2, conditions=("melanoma",), skin_types=(6,)), enqueue=False)
    assert not GenerationJob.objects.exists()
    settings.ATLAS_GATES = ["tone", "condition", "defects"]  # without the copy gate the classifier is enough
    assert generation_job_create(policy=GapPolicy(target=2, conditions=("melanoma",), skin_types=(6,)), enqueue=False)


def test_failing_samples_are_dropped_and_redrawn_until_the_cell_is_full(catalogue, settings):
    settings.ATLAS_GATES = ["defects"]
    settings.ATLAS_GATE_DEFECT_MIN_CONTRAST = SOME_FLAT
    settings.GAP_FILL_DRAWS_PER_IMAGE = 6
    files_before = _files()
    out = io.StringIO()
    call_command("fill_gaps", "--target", "3", "--conditions", "melanoma", "--skin-types", "6", "--seed", "3",
                 "--wait", stdout=out)
    job = GenerationJob.objects.get()
    entry = job.progress["melanoma:6"]
    assert job.status == "succeeded" and job.stored_total == entry["stored"] == 3 and not entry["closed"]
    assert entry["failed"]["defects"] == entry["drawn"] - entry["passed"] > 0  # some were redrawn
    assert entry["drawn"] > 3 and entry["passed"] >= 3
    # Only the stored samples left files and rows; each carries its (passing) gate result.
    images = list(Image.objects.synthetic())
    assert len(images) == SyntheticSample.objects.count() == 3 and _files() - files_before == 2 * 3
    for image in images:
        gate = image.provenance["gates"]["defects"]
        assert gate["passed"] and gate["contrast"] >= SOME_FLAT
        assert image.provenance["gate_thresholds"]["defect_min_contrast"] == SOME_FLAT
        assert image.provenance["draw"] >= image.provenance["sample_index"]
    assert sorted(SyntheticSample.objects.values_list("sample_index", flat=True)) == [0, 1, 2]
    # fill_gaps --wait prints drawn / passed / failed by gate per cell.
    row = re.search(r"melanoma\s+VI\s+3/3\s+(\d+)\s+(\d+)\s+defects (\d+)", out.getvalue())
    assert row and [int(v) for v in row.groups()] == [entry["drawn"], entry["passed"], entry["failed"]["defects"]]


def test_a_cell_the_gates_never_pass_ends_with_its_reason_and_the_counts_are_shown(catalogue, settings, client):
    settings.ATLAS_GATES = ["defects"]
    settings.ATLAS_GATE_DEFECT_MIN_CONTRAST = 1000.0  # nothing is that contrasty: every sample fails
    settings.GAP_FILL_DRAWS_PER_IMAGE = 2
    files_before = _files()
    job = generation_job_create(policy=GapPolicy(target=2, conditions=("melanoma",), skin_types=(6,)), enqueue=False)
    assert generation_job_run(job_id=job.pk).outcome == "finished"
    job.refresh_from_db()
    entry = job.progress["melanoma:6"]
    assert job.status == "succeeded" and job.stored_total == 0 and entry["closed"]
    assert (entry["drawn"], entry["passed"], entry["failed"]) == (4, 0, {"defects": 4})
    assert "stopped at 0 of 2: 4 of 4 draws failed the gates (defects 4)" in entry["note"]
    assert not Image.objects.synthetic().exists() and not SyntheticSample.objects.exists() and _files() == files_before

    staff = get_user_model().objects.create_user("curator", password="pw", is_staff=True)
    client.force_login(staff)
    page = client.get(reverse("generation:job_detail", args=[job.pk])).content.decode()
    assert re.search(r'data-cell-drawn="melanoma:6">4 <small>of at most 4', page)
    assert 'data-cell-passed="melanoma:6">0<' in page and 'data-cell-failed="melanoma:6">defects 4<' in page
    assert "4 of 4 draws failed the gates" in page
    status = client.get(reverse("generation:job_status", args=[job.pk])).json()["cells"][0]
    assert (status["drawn"], status["passed"], status["failed"], status["max_draws"]) == (4, 0, {"defects": 4}, 4)
    api = client.get(f"/api/v1/generation/jobs/{job.pk}/").json()["cells"][0]
    assert (api["drawn"], api["passed"], api["failed"], api["closed"]) == (4, 0, {"defects": 4}, True)
    assert "failed the gates" in api["note"]


def test_every_gate_runs_with_real_judges_and_counts_each_failure(catalogue, settings, monkeypatch):
    """All four gates with installed judges: the untrained classifier, the report's encoder
    (5 steps) and the index of real training crops that prepare_gates builds."""
    monkeypatch.setattr(quality, "ENCODER_STEPS", 5)
    _install_untrained_classifier()
    assert "built the near-copy index" in gates_prepare()
    assert "present" in gates_prepare()  # the second time finds it
    settings.GAP_FILL_DRAWS_PER_IMAGE = 1
    job = generation_job_create(policy=GapPolicy(target=2, conditions=("melanoma",), skin_types=(6,)), enqueue=False)
    generation_job_run(job_id=job.pk)
    job.refresh_from_db()
    entry = job.progress["melanoma:6"]
    assert set(entry["failed"]) == {"tone", "condition", "copy", "defects"} and entry["drawn"] == 2
    assert entry["passed"] == job.stored_total == Image.objects.synthetic().count()
    for image in Image.objects.synthetic():
        assert set(image.provenance["gates"]) == {"tone", "condition", "copy", "defects"}
        assert all(result["passed"] for result in image.provenance["gates"].values())
