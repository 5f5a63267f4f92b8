"""Gap filling in one process: policy, plan, command, jobs end to end, idempotency, overlap."""

from __future__ import annotations

import io
import os
import sys

import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.db import OperationalError

from atlas.models import Image
from atlas.services.ingestion import read_synthetic_marker
from generation import gaps
from generation.gaps import GapError, GapPolicy, gap_plan, generation_job_create, generation_job_run, synthetic_room
from generation.models import GenerationJob, SyntheticSample
from generation.tasks import generation_job_run_task

from .gaps_helpers import small_catalogue, tiny_checkpoint
from .helpers import VOCAB


@pytest.fixture(autouse=True)
def gan_settings(tmp_path, settings):
    settings.GAN_ROOT = tmp_path / "gan"
    settings.GAN_DEVICE = "cpu"
    settings.GAP_FILL_BATCH_SIZE = 3


@pytest.fixture
def catalogue(source):
    return small_catalogue(source)


@pytest.fixture
def checkpoint(db, tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.getbasetemp())


def _cells(plan) -> dict:
    return {(c.condition.slug, c.skin_type): c.count for c in plan.cells}


@pytest.mark.parametrize(
    ("real", "synthetic", "target", "share", "room"),
    [
        (0, 0, 5, None, 5),
        (2, 1, 5, None, 2),
        (7, 0, 5, None, 0),  # over target: nothing, never negative
        (3, 0, 10, 0.5, 3),  # 50% cap: as many synthetic as real
        (0, 0, 10, 0.5, 0),  # a cap leaves an all-synthetic cell empty
        (4, 1, 10, 0.5, 3),
        (3, 0, 10, 1.0, 7),  # 100% = no cap
        (3, 0, 4, 0.9, 1),  # the target binds before the cap
    ],
)
def test_synthetic_room(real, synthetic, target, share, room):
    assert synthetic_room(real=real, synthetic=synthetic, target=target, max_share=share) == room


def test_plan_counts_real_first_and_lists_only_deficits(catalogue, checkpoint):
    plan = gap_plan(policy=GapPolicy(target=2, conditions=("melanoma", "psoriasis"), skin_types=(1, 2, 3, 6)))
    # melanoma: I and II have 2 real (full), III has 1, VI has 0; psoriasis: I has 1, others 0.
    assert _cells(plan) == {("melanoma", 3): 1, ("melanoma", 6): 2, ("psoriasis", 1): 1, ("psoriasis", 2): 2,
                            ("psoriasis", 3): 2, ("psoriasis", 6): 2}
    assert plan.total == 10 and plan.skipped == []
    melanoma_vi = next(c for c in plan.cells if c.key == "melanoma:6")
    # Five melanoma layouts from the allowed source; the no-AI source's image is not counted.
    assert (melanoma_vi.real, melanoma_vi.synthetic, melanoma_vi.maps) == (0, 0, 5)


def test_plan_skips_what_the_cap_or_the_checkpoint_rules_out(catalogue, checkpoint):
    capped = gap_plan(policy=GapPolicy(target=4, conditions=("melanoma",), skin_types=(1, 6), max_synthetic_share=0.5))
    assert _cells(capped) == {("melanoma", 1): 2}
    assert [(c.key, c.note) for c in capped.skipped] == [("melanoma:6", "synthetic share cap allows 0")]
    # The tiny checkpoint knows acne, melanoma, psoriasis and vitiligo only.
    eczema = gap_plan(policy=GapPolicy(target=1, conditions=("eczema",), skin_types=(5,)))
    assert eczema.cells == [] and "not trained on this condition" in eczema.skipped[0].note


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (GapPolicy(target=0), "target must be"),
        (GapPolicy(target=5, skin_types=(7,)), "Fitzpatrick 1-6"),
        (GapPolicy(target=5, skin_types=()), "at least one skin type"),
        (GapPolicy(target=5, conditions=("melanoma", "dragon-pox")), "unknown condition: dragon-pox"),
        (GapPolicy(target=5, max_synthetic_share=1.5), "fraction from 0 to 1"),
    ],
)
def test_bad_policy_is_refused_and_writes_nothing(catalogue, checkpoint, policy, message):
    with pytest.raises(GapError, match=message):
        generation_job_create(policy=policy, enqueue=False)
    assert not GenerationJob.objects.exists()


def test_a_job_needs_a_checkpoint_and_something_to_do(catalogue, checkpoint):
    with pytest.raises(GapError, match="nothing to generate"):
        generation_job_create(policy=GapPolicy(target=1, conditions=("melanoma",), skin_types=(1,)), enqueue=False)
    checkpoint.is_active = False
    checkpoint.save()
    with pytest.raises(GapError, match="no active GAN checkpoint"):
        generation_job_create(policy=GapPolicy(target=3), enqueue=False)
    assert not GenerationJob.objects.exists()


def test_dry_run_prints_the_plan_and_changes_nothing(catalogue, checkpoint):
    out = io.StringIO()
    call_command("fill_gaps", "--target", "2", "--conditions", "melanoma", "--skin-types", "3,6", "--dry-run", stdout=out)
    text = out.getvalue()
    assert "melanoma" in text and "III" in text and "VI" in text
    lines = [line.split() for line in text.splitlines() if line.startswith("melanoma")]
    assert [(line[1], line[-1]) for line in lines] == [("III", "1"), ("VI", "2")]
    assert "total: 3 image(s) in 2 cell(s)" in text and "dry run" in text
    assert not GenerationJob.objects.exists() and not Image.objects.synthetic().exists()


def test_command_refuses_bad_input(catalogue, checkpoint):
    with pytest.raises(CommandError, match="--target is required"):
        call_command("fill_gaps", "--dry-run")
    with pytest.raises(CommandError, match="numbers 1-6"):
        call_command("fill_gaps", "--target", "2", "--skin-types", "dark", "--dry-run")
    with pytest.raises(CommandError, match="unknown condition"):
        call_command("fill_gaps", "--target", "2", "--conditions", "nope")
    assert not GenerationJob.objects.exists()


def test_job_end_to_end_stores_exactly_the_plan_with_provenance(catalogue, checkpoint, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as enqueued:
        job = generation_job_create(policy=GapPolicy(target=4, conditions=("melanoma",), skin_types=(5, 6)))
    assert len(enqueued) == 1 and job.status == "queued" and job.planned_total == 8
    report = generation_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert report.outcome == "finished" and job.status == "succeeded" and job.stored_total == 8
    # Synthetic images wait for review (ATLAS_SYNTHETIC_REVIEW): none is public yet.
    assert job.after == {"melanoma:5": {"real": 0, "synthetic": 0, "pending": 4},
                         "melanoma:6": {"real": 0, "synthetic": 0, "pending": 4}}
    images = list(Image.objects.synthetic().order_by("id"))
    assert len(images) == 8 and SyntheticSample.objects.filter(job=job).count() == 8
    allowed = {str(i.public_id) for i in catalogue["allowed"]}
    for image in images:
        p = image.provenance
        assert image.condition.slug == "melanoma" and image.fitzpatrick_type == p["cell"]["skin_type"]
        assert image.review_state == "pending" and "checkpoint_path" not in p
        assert p["training_data"] == (checkpoint.data_description or {"summary": "not recorded"})
        assert p["job"] == job.pk and p["checkpoint_id"] == checkpoint.pk and p["model"] == "DermGAN"
        assert p["map"]["source_image"] in allowed  # never the no-AI source
        assert image.regions.count() == len(p["map"]["boxes"]) >= 1
        with default_storage.open(image.file.name, "rb") as fh:
            marker = read_synthetic_marker(fh.read())
        assert marker["Atlas-Origin"] == "synthetic" and marker["Atlas-Checkpoint"] == p["checkpoint"]
    assert sorted(s.sample_index for s in job.samples.filter(skin_type=6)) == [0, 1, 2, 3]


def test_a_sample_is_reproducible_from_its_provenance(catalogue, checkpoint):
    from generation.sample import generate
    from generation.semantic_map import Box, MapSpec, encode
    from generation.services import gan_generator_load

    job = generation_job_create(policy=GapPolicy(target=3, conditions=("psoriasis",), skin_types=(4,)), enqueue=False)
    generation_job_run(job_id=job.pk)
    image = Image.objects.synthetic().get(provenance__sample_index=2)
    p, gen = image.provenance, gan_generator_load(checkpoint=checkpoint)
    spec = MapSpec("psoriasis", 4, tuple(Box(*b) for b in p["map"]["boxes"]))
    maps = [encode(spec, width=64, height=64, vocabulary=gen.vocabulary)] * p["batch"]["size"]
    again = generate(gen, maps, seed=p["seed"], batch_size=p["batch"]["size"])[p["batch"]["position"]]
    with default_storage.open(image.file.name, "rb") as fh:
        from PIL import Image as PILImage

        stored = PILImage.open(fh).convert("RGB")
    assert stored.tobytes() == again.tobytes()


def test_running_the_task_twice_changes_nothing(catalogue, checkpoint):
    job = generation_job_create(policy=GapPolicy(target=3, conditions=("melanoma",), skin_types=(6,)), enqueue=False)
    assert generation_job_run_task.apply(args=[job.pk]).get() == "finished"
    files = sorted(default_storage.listdir("images")[0])
    assert generation_job_run_task.apply(args=[job.pk]).get() == "gone"
    assert Image.objects.synthetic().count() == 3 and SyntheticSample.objects.count() == 3
    assert sorted(default_storage.listdir("images")[0]) == files


def test_a_batch_that_dies_half_way_leaves_nothing_and_the_retry_completes(catalogue, checkpoint, monkeypatch):
    job = generation_job_create(policy=GapPolicy(target=7, conditions=("melanoma",), skin_types=(6,)), enqueue=False)
    real_commit, calls = gaps.image_commit, {"n": 0}

    def flaky(**kwargs):
        calls["n"] += 1
        if calls["n"] == 5:  # the second image of the second batch (batches of 3)
            raise OperationalError("database is locked")
        return real_commit(**kwargs)

    monkeypatch.setattr(gaps, "image_commit", flaky)
    with pytest.raises(OperationalError):
        generation_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.stored_total == 3 and Image.objects.synthetic().count() == 3  # batch 1 only, batch 2 rolled back
    assert job.lease_owner == ""  # released, so the retry can take it
    stored_files = {n for d in default_storage.listdir("images")[0] for n in default_storage.listdir(f"images/{d}")[1]}
    assert len(stored_files) == Image.objects.count()  # the rolled-back image's files were removed
    assert generation_job_run(job_id=job.pk).outcome == "finished"
    job.refresh_from_db()
    assert job.status == "succeeded" and job.stored_total == 7 and Image.objects.synthetic().count() == 7
    assert sorted(SyntheticSample.objects.values_list("sample_index", flat=True)) == list(range(7))


def test_overlapping_jobs_do_not_overshoot_the_target(catalogue, checkpoint):
    policy = GapPolicy(target=5, conditions=("melanoma",), skin_types=(3, 6))
    first = generation_job_create(policy=policy, enqueue=False)
    second = generation_job_create(policy=policy, enqueue=False)  # planned before the first ran
    assert first.planned_total == second.planned_total == 9
    # Interleave: the second job stores one batch, then the first runs to the end.
    second_owner = "elsewhere:1"
    gaps._acquire(second.pk, second_owner)
    report = generation_job_run(job_id=second.pk, owner=second_owner, budget_seconds=0)
    assert report.outcome == "continue" and report.stored == 3
    assert generation_job_run(job_id=first.pk).outcome == "finished"
    assert generation_job_run(job_id=second.pk).outcome == "finished"
    assert gaps.cell_counts(catalogue["melanoma"], 3) == (1, 4)
    assert gaps.cell_counts(catalogue["melanoma"], 6) == (0, 5)
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.stored_total + second.stored_total == 9
    closed = [k for j in (first, second) for k, v in j.progress.items() if v["closed"]]
    assert closed  # a job that found its cell full says so
    assert "reached the target" in " ".join(line for j in (first, second) for _, line in j.log)


def test_cancel_stops_a_job_and_only_active_jobs_can_be_cancelled(catalogue, checkpoint):
    job = generation_job_create(policy=GapPolicy(target=3, conditions=("melanoma",), skin_types=(6,)), enqueue=False)
    gaps.generation_job_cancel(job=job)
    assert generation_job_run(job_id=job.pk).outcome == "gone"
    assert not Image.objects.synthetic().exists()
    with pytest.raises(GapError, match="already cancelled"):
        gaps.generation_job_cancel(job=job)


def test_cancel_during_a_batch_drops_that_batch(catalogue, checkpoint, monkeypatch):
    job = generation_job_create(policy=GapPolicy(target=6, conditions=("melanoma",), skin_types=(6,)), enqueue=False)
    real_seed = gaps.stable_seed

    def cancel_on_second_batch(*parts):
        # Called between generating a batch's maps and its pixels: a curator cancels then.
        if parts[1:] == ("melanoma:6", "batch", 1):
            gaps.generation_job_cancel(job=GenerationJob.objects.get(pk=job.pk))
        return real_seed(*parts)

    monkeypatch.setattr(gaps, "stable_seed", cancel_on_second_batch)
    assert generation_job_run(job_id=job.pk).outcome == "stopped"
    job.refresh_from_db()
    assert job.status == "cancelled" and job.stored_total == 3 and Image.objects.synthetic().count() == 3


def test_a_refused_checkpoint_fails_the_job_with_the_reason(catalogue, checkpoint, tmp_path):
    job = generation_job_create(policy=GapPolicy(target=2, conditions=("melanoma",), skin_types=(6,)), enqueue=False)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    checkpoint.path = str(broken)
    checkpoint.save()
    assert generation_job_run(job_id=job.pk).outcome == "failed"
    job.refresh_from_db()
    assert job.status == "failed" and "not a readable checkpoint" in job.error and job.finished_at


def test_embedding_is_enqueued_after_each_batch_commits(catalogue, checkpoint, settings, django_capture_on_commit_callbacks):
    settings.ATLAS_AFTER_INGEST_TASKS = ["tests.generation.test_gaps.RECORDER"]
    RECORDER.calls.clear()
    job = generation_job_create(policy=GapPolicy(target=4, conditions=("melanoma",), skin_types=(6,)), enqueue=False)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        generation_job_run(job_id=job.pk)
    assert len(callbacks) == 4 and sorted(RECORDER.calls) == sorted(Image.objects.synthetic().values_list("id", flat=True))


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[int] = []

    def delay(self, image_id: int) -> None:
        self.calls.append(image_id)


RECORDER = _Recorder()


def test_leases_keep_a_second_worker_away_until_the_owner_is_gone(catalogue, checkpoint):
    job = generation_job_create(policy=GapPolicy(target=2, conditions=("melanoma",), skin_types=(6,)), enqueue=False)
    live = f"{gaps.socket.gethostname()}:{os.getppid()}"  # a live process on this host
    gaps._acquire(job.pk, live)
    assert generation_job_run(job_id=job.pk).outcome == "busy"
    assert gaps.generation_jobs_recover(enqueue=False) == []
    dead = f"{gaps.socket.gethostname()}:{2**22 + 12345}"  # above pid_max: no such process
    GenerationJob.objects.filter(pk=job.pk).update(lease_owner=dead)
    assert gaps.generation_jobs_recover(enqueue=False) == [job.pk]
    assert generation_job_run(job_id=job.pk).outcome == "finished"
    job.refresh_from_db()
    assert any("resumed on" in line for _, line in job.log)


def test_queued_jobs_are_recovered_only_once_their_message_looks_lost(catalogue, checkpoint, settings):
    from datetime import timedelta

    from django.utils import timezone

    job = generation_job_create(policy=GapPolicy(target=2, conditions=("melanoma",), skin_types=(6,)), enqueue=False)
    assert gaps.generation_jobs_recover(enqueue=False) == []  # its message is most likely still queued
    GenerationJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(seconds=601))
    assert gaps.generation_jobs_recover(enqueue=False) == [job.pk]
    out = io.StringIO()
    call_command("fill_gaps", "--resume", stdout=out)
    assert f"re-enqueued 1 job(s): {job.pk}" in out.getvalue()


def test_fill_gaps_wait_runs_the_job_in_process(catalogue, checkpoint):
    out = io.StringIO()
    call_command("fill_gaps", "--target", "2", "--conditions", "psoriasis", "--skin-types", "5", "--wait", stdout=out)
    assert "succeeded: 2 of 2 stored" in out.getvalue()
    assert Image.objects.synthetic().filter(condition__slug="psoriasis", fitzpatrick_type=5).count() == 2


def test_tasks_are_late_acked_time_limited_and_routed_to_the_generation_queue(settings):
    from atlas.celery import app
    from generation.tasks import generation_jobs_recover_task

    for task in (generation_job_run_task, generation_jobs_recover_task):
        assert task.acks_late and task.soft_time_limit < task.time_limit
        assert app.amqp.router.route({}, task.name, (), {})["queue"].name == "generation"
    assert generation_job_run_task.reject_on_worker_lost
    assert generation_job_run_task.max_retries >= 3 and generation_job_run_task.retry_backoff
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1


def test_overlapping_jobs_count_only_the_images_they_committed(catalogue, checkpoint):
    """Two jobs with the same seed draw the same pixels: the second job's first batch finds
    them in the catalogue already (reused, nothing new stored). Its counter must not claim
    them: the jobs' counters add up to the synthetic images that exist."""
    policy = GapPolicy(target=5, conditions=("melanoma",), skin_types=(6,))
    first = generation_job_create(policy=policy, seed=7, enqueue=False)
    second = generation_job_create(policy=policy, seed=7, enqueue=False)
    assert generation_job_run(job_id=first.pk, owner="a:1", budget_seconds=0).stored == 3
    report = generation_job_run(job_id=second.pk, owner="b:1", budget_seconds=0)
    assert report.stored == 0 and SyntheticSample.objects.filter(job=second, reused=True).count() == 2
    for job in (first, second):
        while generation_job_run(job_id=job.pk).outcome != "finished":
            pass
    first.refresh_from_db()
    second.refresh_from_db()
    assert gaps.cell_counts(catalogue["melanoma"], 6) == (0, 5)
    assert first.stored_total + second.stored_total == Image.objects.synthetic().count() == 5
    for job in (first, second):
        assert job.stored_total == Image.objects.filter(provenance__job=job.pk).count()


def test_a_batch_writes_its_files_before_it_takes_the_cell_lock(catalogue, checkpoint, monkeypatch):
    """Encoding and writing files is the slow part: it happens before the lock, which then
    covers only counting the cell and inserting rows."""
    from atlas.ops.backup import storage_walk

    job = generation_job_create(policy=GapPolicy(target=3, conditions=("melanoma",), skin_types=(6,)), enqueue=False)
    before = len(list(storage_walk(default_storage)))
    real_counts, seen = gaps.cell_counts, []

    def counted_under_the_lock(condition, skin_type):
        seen.append(len(list(storage_walk(default_storage))) - before)
        return real_counts(condition, skin_type)

    monkeypatch.setattr(gaps, "cell_counts", counted_under_the_lock)
    assert generation_job_run(job_id=job.pk).outcome == "finished"
    assert seen == [6]  # one batch of 3: images and thumbnails were already stored
    assert len(list(storage_walk(default_storage))) - before == 6 == 2 * Image.objects.synthetic().count()


def test_a_plan_reads_the_checkpoints_facts_from_its_row_not_its_file(catalogue, checkpoint, monkeypatch):
    policy = GapPolicy(target=2, conditions=("melanoma",), skin_types=(3, 6))
    first = gap_plan(policy=policy)  # a row made without the facts is filled from its file, once
    checkpoint.refresh_from_db()
    assert (checkpoint.vocabulary, checkpoint.image_size, checkpoint.crop_window) == (list(VOCAB), 64, None)
    # From now on planning needs no torch: the modules that load it cannot even be imported.
    monkeypatch.setitem(sys.modules, "generation.sample", None)
    monkeypatch.setitem(sys.modules, "generation.services", None)
    assert _cells(gap_plan(policy=policy)) == _cells(first) == {("melanoma", 3): 1, ("melanoma", 6): 2}
    assert gaps.checkpoint_vocabulary(checkpoint) == tuple(VOCAB)


def test_a_checkpoint_whose_file_is_gone_refuses_a_job_even_with_its_facts_on_the_row(catalogue, checkpoint, tmp_path):
    moved = tmp_path / "elsewhere.pt"
    moved.write_bytes(checkpoint.file.read_bytes())
    checkpoint.path, checkpoint.vocabulary, checkpoint.image_size = str(moved), list(VOCAB), 64
    checkpoint.save()
    moved.unlink()
    with pytest.raises(GapError, match="missing or unreadable"):
        generation_job_create(policy=GapPolicy(target=2, conditions=("melanoma",), skin_types=(6,)), enqueue=False)
    assert GenerationJob.objects.count() == 0
