"""Fault tests on loopback (marker ops; they run in CI, which runs as root).

* PostgreSQL stopped and started again under a running gunicorn: requests in between answer
  503 (never 500), an ingestion leaves no row and no file, and the same server process
  answers 200 again without a restart (CONN_HEALTH_CHECKS).
* A private Redis (its own port; the machine's 6379 is never touched) stopped: browsing and
  search keep working, /health/ is degraded (200) and /health/ready stays 200, starting a job answers "generation unavailable", and when Redis is
  back the recovery task re-enqueues the job whose message was lost.
* A worker killed in the middle of writing a new index version: the live index is untouched
  and the next reindex completes.
* The media disk full while ingesting (a 1 MB tmpfs mounted by the test): a clear error,
  no row, no orphan file.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.db import OperationalError, connection
from django.utils import timezone

from atlas.models import Image
from atlas.services.ingestion import image_ingest
from tests.conftest import make_image_bytes, require, require_redis_server_binary, require_root
from tests.ops.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.ops


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file())


def _noise_png(size: int, seed: int) -> bytes:
    import io

    import numpy as np
    from PIL import Image as PILImage

    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    PILImage.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


# --- PostgreSQL restarted -------------------------------------------------------------------


def _cluster() -> list[str]:
    version = sorted(os.listdir("/etc/postgresql"))[0]
    return ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main"]


def _pg_ready() -> bool:
    return subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"]).returncode == 0


def _pg_start_and_wait() -> None:
    if not _pg_ready():
        subprocess.run([*_cluster(), "start"], check=False, capture_output=True, timeout=60)
    for _ in range(120):
        if _pg_ready():
            return
        time.sleep(0.25)
    raise RuntimeError("PostgreSQL did not come back")


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def web_server(tmp_path):
    """gunicorn (one sync worker) on the pytest database, as a deployment would run it."""
    # The postgres marker runs this on CI's PostgreSQL pass; there it must not skip.
    require_root("stop and start the PostgreSQL cluster")
    require(shutil.which("pg_ctlcluster") is not None and os.path.isdir("/etc/postgresql"),
            "pg_ctlcluster (Debian's postgresql-common) is missing: the cluster cannot be restarted")
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
        "DJANGO_SETTINGS_MODULE": "atlas.settings.local",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}",
        "ATLAS_VAR_DIR": str(tmp_path / "var"),
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
        "GUNICORN_ACCESS_LOG": "",
    }
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), "-c", "scripts/gunicorn.conf.py", "atlas.wsgi"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "gunicorn.log", "w"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # a worker imports torch and FAISS: slow on a busy machine
        while True:
            try:
                _get(base + "/conditions/")
                break
            except OSError:  # refused (not listening yet) or timed out (worker still booting)
                assert server.poll() is None, (tmp_path / "gunicorn.log").read_text()
                assert time.monotonic() < deadline, "gunicorn did not answer in 180 s"
                time.sleep(0.25)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_postgres_restart_under_load_fails_cleanly_and_recovers(web_server, source, melanoma, media_root):
    assert _get(web_server + "/conditions/") == 200  # the worker now holds a persistent connection
    statuses: list[int | str] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                statuses.append(_get(web_server + "/conditions/"))
            except OSError as exc:  # refused, reset or timed out: not a clean failure
                statuses.append(f"no answer: {exc}")
            time.sleep(0.05)

    thread = threading.Thread(target=load)
    thread.start()
    try:
        subprocess.run([*_cluster(), "stop", "-m", "fast"], check=True, capture_output=True, timeout=60)
        time.sleep(0.5)
        assert _get(web_server + "/conditions/") == 503
        with pytest.raises(OperationalError):  # an upload while the database is down
            image_ingest(file=make_image_bytes(seed=11), condition=melanoma, source=source)
        assert _files(media_root) == []  # the files it stored first were removed again
    finally:
        _pg_start_and_wait()
        time.sleep(0.5)
        stop.set()
        thread.join()
    connection.close()  # this test process's connection died with the server too
    assert _get(web_server + "/conditions/") == 200  # same gunicorn worker: reconnected by itself
    assert Image.objects.count() == 0  # nothing half-written
    assert statuses and set(statuses) <= {200, 503}, statuses
    assert 503 in statuses and statuses[-1] == 200


# --- Redis stopped --------------------------------------------------------------------------


class PrivateRedis:
    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("private redis did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def llen(self, queue: str) -> int:
        return redis.Redis(port=self.port).llen(queue)


def _celery_broker(url: str, *, eager: bool) -> None:
    from atlas.celery import app

    app.conf.broker_url = url
    app.conf.task_always_eager = eager
    app.conf.broker_connection_retry = False
    app.conf.broker_transport_options = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5, "max_retries": 0}
    # Drop (never close) the cached pools: kombu's global producer pools may still hold them.
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def private_redis(tmp_path, settings):
    from atlas.celery import app

    require_redis_server_binary()
    saved = {key: app.conf[key] for key in ("broker_url", "task_always_eager", "broker_connection_retry", "broker_transport_options")}
    server = PrivateRedis(tmp_path)
    server.start()
    settings.CELERY_BROKER_URL = server.url
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.HEALTH_BROKER_TIMEOUT = 0.5
    _celery_broker(server.url, eager=False)
    try:
        yield server
    finally:
        server.stop()
        app.conf.update(saved)
        _celery_broker(saved["broker_url"], eager=saved["task_always_eager"])
        app.conf.broker_connection_retry = saved["broker_connection_retry"]
        app.conf.broker_transport_options = saved["broker_transport_options"]


@pytest.mark.django_db  # tier ops: its own redis-server on a free port, not the broker tier's Redis
def test_redis_down_browsing_and_search_work_jobs_refused_then_resume(
    private_redis, indexed, client, admin_client, django_capture_on_commit_callbacks
):
    from generation.gaps import GapError, GapPolicy, generation_job_create, generation_jobs_recover
    from generation.models import GanCheckpoint, GenerationJob

    checkpoint = GanCheckpoint.objects.create(path="g.pt", run="r", preset="fast", step=1, data_fingerprint="f", is_active=True)
    # A job queued just before the outage: Redis keeps nothing on disk, so its message is lost.
    lost = GenerationJob.objects.create(checkpoint=checkpoint, target=1, seed=1, planned_total=1)
    GenerationJob.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(hours=2))

    private_redis.stop()
    assert client.get("/").status_code == 200
    assert client.get("/conditions/").status_code == 200
    page = client.get("/search/", {"q": "melanoma"})
    results = page.context["results"]
    assert page.status_code == 200 and results.mode == "text" and not results.unavailable and len(results.page) > 0
    health = client.get("/health/")  # alerting sees the broker; the load balancer keeps the host
    assert health.status_code == 200 and health.json()["status"] == "degraded" and "broker" in health.json()["failing"]
    assert client.get("/health/ready").status_code == 200

    with pytest.raises(GapError, match="generation unavailable"):
        generation_job_create(policy=GapPolicy(target=5, skin_types=(5, 6)))
    response = admin_client.post("/generation/fill-gaps/", {"skin_types": ["5", "6"], "target": "5", "max_synthetic_percent": "50"})
    assert response.status_code == 400 and b"generation unavailable" in response.content
    assert GenerationJob.objects.count() == 1  # no job row for the refused start

    private_redis.start()  # back, empty
    assert client.get("/health/").json()["checks"]["broker"]["status"] == "ok"
    with django_capture_on_commit_callbacks(execute=True):
        recovered = generation_jobs_recover()  # what beat runs every GENERATION_RECOVER_SECONDS
    assert recovered == [lost.pk]
    assert private_redis.llen("generation") == 1  # the lost job is queued again for the GPU worker


# --- a worker killed during reindex ---------------------------------------------------------


def _reindex_killed_while_writing() -> None:
    """In a forked child: reindex, but die (SIGKILL) with the new file written and not yet renamed."""
    import search.index

    def die(fd) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    search.index.os.fsync = die  # the save's fsync, just before its rename (the child's own os module)
    from search.indexing import index_rebuild

    index_rebuild(full=True)
    os._exit(3)  # not reached


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_worker_killed_during_reindex_leaves_the_live_index_and_the_next_run_completes(indexed, add_image, settings):
    from search.indexing import index_store
    from search.query import reset_caches, search_text

    _, first = indexed
    before = [h.image.pk for h in search_text(query="melanoma").hits]
    add_image("melanoma", skin_type=3)
    kept = connection.connection  # the child must not touch (or close) our database socket
    pid = os.fork()
    if pid == 0:
        try:
            if connection.vendor == "postgresql":
                connection.connection = None  # a connection of its own
            _reindex_killed_while_writing()
        finally:
            os._exit(4)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert connection.connection is kept

    pointer = index_store().read_pointer()
    assert pointer["version"] == first.pk  # the live pointer was never swapped
    reset_caches()
    assert [h.image.pk for h in search_text(query="melanoma").hits] == before  # still served

    from search.indexing import index_rebuild

    second = index_rebuild()
    assert second.status == "succeeded" and second.vector_count == 7
    assert index_store().read_pointer()["version"] == second.pk
    reset_caches()
    assert search_text(query="melanoma").index_version == str(second.pk)


# --- disk full while ingesting --------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path, settings):
    require_root("mount a tmpfs")
    mount = tmp_path / "small-disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True, text=True)
    if result.returncode != 0:
        if os.environ.get("CI") and os.geteuid() == 0:
            pytest.fail(f"CI runs as root but could not mount a tmpfs: {result.stderr}")
        pytest.skip(f"mounting a tmpfs is not permitted here: {result.stderr.strip()}")
    try:
        settings.MEDIA_ROOT = mount
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.django_db
def test_disk_full_while_ingesting_is_a_clear_error_with_no_orphans(small_disk, source, melanoma, client, admin_user):
    # Leave less room than one image plus its thumbnail needs.
    filler = small_disk / "filler"
    with open(filler, "wb") as handle:
        try:
            handle.write(b"\x00" * (1024 * 1024 - 96 * 1024))
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    before = _files(small_disk)
    with pytest.raises(OSError) as raised:
        image_ingest(file=_noise_png(256, seed=1), condition=melanoma, source=source)
    assert raised.value.errno == errno.ENOSPC
    assert Image.objects.count() == 0 and _files(small_disk) == before  # no row, no orphan file

    # Over HTTP (API upload): 507 with a message, not a 500.
    client.force_login(admin_user)
    response = client.post(
        "/api/v1/uploads/",
        {"file": _as_upload(_noise_png(256, seed=2)), "condition": "melanoma", "source": source.slug, "fitzpatrick_type": 4},
    )
    assert response.status_code == 507, response.content[:300]
    assert response.json()["error"]["code"] == "storage_full"
    assert Image.objects.count() == 0 and _files(small_disk) == before
    filler.unlink()
    assert image_ingest(file=_noise_png(256, seed=3), condition=melanoma, source=source).created  # room again: works
    assert shutil.disk_usage(small_disk).used > 0


def _as_upload(data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("photo.png", data, content_type="image/png")
