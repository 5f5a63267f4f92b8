"""A distributed reindex on real Celery workers (Redis broker; marker `broker`): a chunk that
fails once is retried and succeeds, one that keeps failing fails the job by name, a worker
killed mid-chunk is resumed by `reindex --resume`, and the merge publishes every vector.

Workers and the `reindex` command run as separate processes on the test's database (see
tests/generation/test_gaps_broker.py: SharedDatabase). The workers come from
tests/search/reindex_worker.py, which injects read faults named by image id. The broker is
Redis database 7 (ATLAS_REINDEX_TEST_BROKER overrides), flushed before and after.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from tests.generation.test_gaps_broker import SharedDatabase

BROKER_URL = os.environ.get("ATLAS_REINDEX_TEST_BROKER", "redis://127.0.0.1:6379/7")
ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.broker, pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


class Processes:
    """Environment shared by the workers and the command: the test's database, media, model."""

    def __init__(self, tmp_path: Path, db: SharedDatabase, media_root: Path, checkpoint: Path) -> None:
        self.tmp, self.faults = tmp_path, tmp_path / "faults"
        self.faults.mkdir()
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "atlas.settings.local",
            "DATABASE_URL": db.url,
            "CELERY_BROKER_URL": BROKER_URL,
            "MEDIA_ROOT": str(media_root),
            "ATLAS_VAR_DIR": str(tmp_path / "var"),
            "SEARCH_CLIP_MODEL": "atlas-clip-tiny",
            "SEARCH_CLIP_PRETRAINED": str(checkpoint),
            "SEARCH_CLIP_DEVICE": "cpu",
            "SEARCH_INDEX_DIR": str(tmp_path / "index"),
            "SEARCH_REINDEX_CHUNK_RETRIES": "2",
            "SEARCH_REINDEX_RETRY_SECONDS": "1",
            "REINDEX_FAULTS": str(self.faults),
            "LOG_LEVEL": "INFO",
        }
        self.workers: list[subprocess.Popen] = []

    def worker(self, name: str) -> Path:
        log = self.tmp / f"{name}.log"
        command = [sys.executable, "tests/search/reindex_worker.py", "-A", "atlas", "worker", "-Q", "indexing", "-c", "1",
                   "--prefetch-multiplier", "1", "-n", f"{name}@%h", "--without-mingle", "--without-gossip", "--loglevel", "INFO"]
        with open(log, "ab") as out:
            self.workers.append(subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                                 start_new_session=True))
        _wait(lambda: " ready." in log.read_text(errors="replace"), timeout=900, what=f"worker {name} to start", log=log)
        return log

    def kill_workers(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        self.workers.clear()

    def reindex(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "manage.py", "reindex", *args], cwd=ROOT, env=self.env, text=True,
                              capture_output=True, timeout=900)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    def fault(self, image_id: int, what: str | None) -> None:
        marker = self.faults / str(image_id)
        if what is None:
            marker.unlink(missing_ok=True)
        else:
            marker.write_text(what)


def _wait(predicate, *, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}\n{tail}")


@pytest.fixture
def world(add_image, tmp_path, media_root, tiny_checkpoint):
    client = redis.Redis.from_url(BROKER_URL, socket_connect_timeout=3)
    client.flushdb()
    images = [add_image(slug, skin_type=t) for slug in ("melanoma", "psoriasis") for t in (1, 3, 4, 6)]
    db = SharedDatabase(tmp_path)
    db.push()
    processes = Processes(tmp_path, db, media_root, tiny_checkpoint)
    yield {"ids": sorted(i.pk for i in images), "db": db, "run": processes, "redis": client}
    processes.kill_workers()
    client.flushdb()
    client.close()


def _chunks(db: SharedDatabase, job: int) -> list[tuple]:
    rows = []
    for number in range(int(db.scalar("SELECT COUNT(*) FROM search_reindexchunk WHERE job_id = ?", job))):
        where = "FROM search_reindexchunk WHERE job_id = ? AND number = ?"
        rows.append(tuple(db.scalar(f"SELECT {column} {where}", job, number) for column in ("status", "attempts", "error")))
    return rows


def test_chunks_retry_fail_by_name_and_resume_after_a_killed_worker(world):
    db, run, ids = world["db"], world["run"], world["ids"]
    job_status = lambda job: db.scalar("SELECT status FROM search_reindexjob WHERE id = ?", job)  # noqa: E731
    run.fault(ids[1], "1")  # chunk 0: fails once, then reads
    run.fault(ids[4], "-1")  # chunk 1: fails every time
    log = run.worker("reindex-first")

    out = run.reindex("--distributed", "--chunk-size", "3")
    job = int(re.search(r"reindex job (\d+)", out).group(1))
    assert "chunks 0/3 done" in out
    _wait(lambda: job_status(job) == "failed", timeout=600, what="the job to fail on chunk 1", log=log)
    chunks = _chunks(db, job)
    assert [c[:2] for c in chunks] == [("done", 2), ("failed", 3), ("done", 1)]  # 1 try + 2 retries
    assert "injected fault reading image" in chunks[1][2]
    error = db.scalar("SELECT error FROM search_reindexjob WHERE id = ?", job)
    assert f"chunk 1 (image ids {ids[3]}-{ids[5]}) failed after 3 attempts" in error
    assert db.scalar("SELECT COUNT(*) FROM search_indexbuild") == 0  # nothing published
    assert "chunks 2/3 done" in run.reindex("--status", str(job))

    # The crash: the failed chunk hangs on its second run and the worker is killed mid-chunk.
    run.fault(ids[4], "hang")
    run.reindex("--resume", str(job))
    _wait(lambda: _chunks(db, job)[1][0] == "running", timeout=300, what="chunk 1 to start again", log=log)
    run.kill_workers()
    world["redis"].flushdb()  # its unacked message would only come back after the visibility timeout
    assert job_status(job) == "running" and _chunks(db, job)[1][0] == "running"

    run.fault(ids[4], None)
    log = run.worker("reindex-second")
    assert "chunks 2/3 done" in run.reindex("--resume", str(job))
    _wait(lambda: job_status(job) == "succeeded", timeout=600, what="the resumed job to finish", log=log)
    assert [c[0] for c in _chunks(db, job)] == ["done", "done", "done"]
    embedded = db.scalar("SELECT COUNT(DISTINCT image_id) FROM search_imageembedding")
    build = db.scalar("SELECT build_id FROM search_reindexjob WHERE id = ?", job)
    vectors = db.scalar("SELECT vector_count FROM search_indexbuild WHERE id = ?", build)
    assert embedded == vectors == len(ids) == 8
    assert db.scalar("SELECT COUNT(*) FROM search_indexbuild") == 1  # merged once
