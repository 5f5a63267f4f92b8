"""Gap filling with real Celery workers on the Redis broker (marker `broker`; runs in CI).

How the workers see the test's data: they are separate processes, so the data must live in a
database they can open.
* PostgreSQL (DATABASE_URL=postgres://...): the tests use `transactional_db`, so rows are
  committed to pytest-django's test database, and the workers get that database's URL.
* SQLite: pytest-django's test database is in memory, invisible to another process. The test
  copies it into a file with SQLite's backup API (`push`), the workers use the file, and the
  test copies the file back (`pull`) before it asserts with the ORM. While the workers run,
  progress is read from the file with plain SQL.
The broker is Redis database 5 (ATLAS_GAPS_TEST_BROKER overrides), flushed before and after.
Workers run `celery -A atlas worker -Q generation -c 1 --prefetch-multiplier 1` under
atlas.settings.local with DATABASE_URL, CELERY_BROKER_URL and MEDIA_ROOT from the test.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from celery import Celery
from django.conf import settings
from django.db import connection

from atlas.models import Image
from generation.gaps import GapPolicy, cell_counts, generation_job_create
from generation.models import GenerationJob, SyntheticSample

from .gaps_helpers import small_catalogue, tiny_checkpoint

BROKER_URL = os.environ.get("ATLAS_GAPS_TEST_BROKER", "redis://127.0.0.1:6379/5")
ROOT = Path(__file__).resolve().parents[2]
TASK = "generation.tasks.generation_job_run_task"

pytestmark = [pytest.mark.broker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


class SharedDatabase:
    """The test database as other processes can open it (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.sqlite = connection.vendor == "sqlite"
        self.file = directory / "shared.sqlite3"
        if self.sqlite:
            self.url = f"sqlite:///{self.file}"
        else:
            s = connection.settings_dict
            auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
            self.url = f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"

    def push(self) -> None:
        if self.sqlite:
            connection.ensure_connection()
            target = sqlite3.connect(self.file)
            connection.connection.backup(target)
            target.close()

    def pull(self) -> None:
        if self.sqlite:
            source = sqlite3.connect(self.file)
            source.backup(connection.connection)
            source.close()

    def scalar(self, sql: str, *params):
        if self.sqlite:
            with sqlite3.connect(self.file, timeout=30) as db:
                return db.execute(sql, params).fetchone()[0]
        with connection.cursor() as cursor:
            cursor.execute(sql.replace("?", "%s"), params)
            return cursor.fetchone()[0]

    def samples(self, job_id: int) -> int:
        return self.scalar("SELECT COUNT(*) FROM generation_syntheticsample WHERE job_id = ?", job_id)

    def status(self, job_id: int) -> str:
        return self.scalar("SELECT status FROM generation_generationjob WHERE id = ?", job_id)


class Worker:
    """`celery worker -Q generation -c 1 --prefetch-multiplier 1` in its own process group."""

    def __init__(self, name: str, db: SharedDatabase, media_root: Path, log_dir: Path) -> None:
        self.log = log_dir / f"{name}.log"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "atlas.settings.local",
            "DATABASE_URL": db.url,
            "CELERY_BROKER_URL": BROKER_URL,
            "MEDIA_ROOT": str(media_root),
            "ATLAS_VAR_DIR": str(log_dir / "var"),
            "ATLAS_GAN_DEVICE": "cpu",
            "ATLAS_GATES": "none",  # as the in-process tests (tests/conftest.py): bookkeeping, not judging
            "LOG_LEVEL": "INFO",
        }
        command = [sys.executable, "-m", "celery", "-A", "atlas", "worker", "-Q", "generation", "-c", "1",
                   "--prefetch-multiplier", "1", "-n", f"{name}@%h", "--without-mingle", "--without-gossip",
                   "--loglevel", "INFO"]
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool child): no cleanup runs."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def ready(self) -> bool:
        """The worker logged that it consumes (its boot imports torch: minutes on a loaded machine)."""
        return self.log.exists() and " ready." in self.log.read_text(errors="replace")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


@pytest.fixture
def broker():
    # The `broker` marker made sure Redis answers (tests/conftest.py: skip locally, fail in CI).
    client = redis.Redis.from_url(BROKER_URL, socket_connect_timeout=3)
    client.flushdb()
    app = Celery("gaps-test", broker=BROKER_URL)
    yield app
    client.flushdb()
    client.close()


@pytest.fixture
def world(source, tmp_path, tmp_path_factory, settings, media_root, broker):
    settings.GAN_ROOT = tmp_path / "gan"
    settings.GAN_DEVICE = "cpu"
    catalogue = small_catalogue(source)
    tiny_checkpoint(tmp_path_factory.getbasetemp())
    workers: list[Worker] = []

    def start(name: str) -> Worker:
        worker = Worker(name, db, media_root, tmp_path)
        workers.append(worker)
        # Deadlines below time the work, not the boot: wait for the worker to be up first.
        _wait(worker.ready, timeout=900, what=f"worker {name} to start", workers=[worker])
        return worker

    db = SharedDatabase(tmp_path)
    yield {"catalogue": catalogue, "db": db, "start": start, "app": broker}
    for worker in workers:
        worker.kill()


def _wait(predicate, *, timeout: float, what: str, workers=()) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    logs = "\n".join(f"--- {w.log.name}\n{w.tail()}" for w in workers)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}\n{logs}")


def test_sigkilled_worker_restarted_finishes_with_exactly_the_planned_count(world):
    db, catalogue = world["db"], world["catalogue"]
    job = generation_job_create(policy=GapPolicy(target=15, conditions=("melanoma", "psoriasis"), skin_types=(5, 6)),
                                batch_size=3, enqueue=False)
    assert job.planned_total == 60
    db.push()
    first = world["start"]("gaps-first")
    world["app"].send_task(TASK, args=[job.pk], queue="generation")
    _wait(lambda: db.samples(job.pk) >= 1, timeout=180, what="the first stored batch", workers=[first])
    first.kill()
    killed_at = db.samples(job.pk)
    assert 1 <= killed_at < job.planned_total, "the job finished before the kill: make it bigger"
    assert db.status(job.pk) == "running"

    # The killed task's message only comes back after the broker's visibility timeout; the
    # restarted worker recovers the job at once (its owner's pid is dead).
    second = world["start"]("gaps-second")
    _wait(lambda: db.status(job.pk) != "running", timeout=180, what="the job to finish", workers=[second])
    second.kill()
    db.pull()

    job.refresh_from_db()
    assert job.status == "succeeded", job.log
    assert job.stored_total == job.planned_total == 60
    keys = list(SyntheticSample.objects.filter(job=job).values_list("condition__slug", "skin_type", "sample_index"))
    assert len(keys) == len(set(keys)) == 60
    images = Image.objects.synthetic()
    assert images.count() == 60 and images.filter(provenance__job=job.pk).count() == 60
    for slug in ("melanoma", "psoriasis"):
        for skin in (5, 6):
            assert cell_counts(catalogue[slug], skin) == (0, 15)
    assert any("resumed on" in line for _, line in job.log)
    missing = [i.file.name for i in images if not (Path(settings.MEDIA_ROOT) / i.file.name).exists()]
    assert missing == []


def test_overlapping_jobs_on_two_workers_stop_at_the_target(world):
    db, catalogue = world["db"], world["catalogue"]
    policy = GapPolicy(target=15, conditions=("melanoma",), skin_types=(5, 6))
    jobs = [generation_job_create(policy=policy, batch_size=2, enqueue=False) for _ in range(2)]
    assert [j.planned_total for j in jobs] == [30, 30]
    db.push()
    workers = [world["start"]("gaps-a"), world["start"]("gaps-b")]
    for job in jobs:
        world["app"].send_task(TASK, args=[job.pk], queue="generation")
    _wait(lambda: all(db.status(j.pk) == "succeeded" for j in jobs), timeout=180, what="both jobs", workers=workers)
    db.pull()
    for skin in (5, 6):
        assert cell_counts(catalogue["melanoma"], skin) == (0, 15)
    stored = [GenerationJob.objects.get(pk=j.pk).stored_total for j in jobs]
    assert sum(stored) == 30
    assert Image.objects.synthetic().count() == 30
