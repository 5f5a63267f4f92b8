"""/health/live, /health/ready (the load balancer's probe) and /health/ (the full report):
only what stops this host serving answers 503; workers, broker and an old index degrade."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from atlas.ops.models import WorkerHeartbeat
from atlas.ops.services import heartbeat_record
from atlas.ops.tasks import heartbeat_task
from generation.models import GanCheckpoint
from tests.ops.conftest import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def healthy(indexed, settings):
    for queue in settings.HEALTH_QUEUES:
        heartbeat_record(queue=queue, hostname="celery@test")
    GanCheckpoint.objects.create(path="g.pt", run="r", preset="fast", step=1, data_fingerprint="f", is_active=True)
    return indexed


def test_healthy_service_answers_200_with_every_part(client, healthy):
    _, build = healthy
    response = client.get("/health/")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok" and body["failing"] == []
    checks = body["checks"]
    assert checks["database"]["status"] == "ok"
    assert checks["broker"]["status"] == "ok"
    assert checks["index"]["version"] == build.pk and checks["index"]["age_seconds"] < 60
    assert set(checks["workers"]["heartbeat_age_seconds"]) == {"default", "indexing", "generation"}
    assert checks["gan"]["status"] == "ok" and "checkpoint" in checks["gan"]
    assert response["Cache-Control"].startswith("max-age=0")


def test_unreachable_broker_degrades_but_does_not_fail(client, healthy, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    settings.HEALTH_BROKER_TIMEOUT = 0.5
    response = client.get("/health/")
    assert response.status_code == 200  # browsing and search never touch the broker
    body = response.json()
    assert body["status"] == "degraded" and body["failing"] == ["broker"]
    assert "cannot be reached" in body["checks"]["broker"]["detail"]
    assert client.get("/health/ready").status_code == 200


def test_stale_heartbeat_names_the_queue_and_degrades(client, healthy):
    # One dead GPU worker must not take every web host out of the load balancer.
    WorkerHeartbeat.objects.filter(queue="generation").update(seen_at=timezone.now() - timedelta(hours=1))
    response = client.get("/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded" and body["failing"] == ["workers"]
    assert "generation" in body["checks"]["workers"]["detail"] and "default" not in body["checks"]["workers"]["detail"]
    assert client.get("/health/ready").status_code == 200


def test_no_index_yet_is_a_warning_search_falls_back(client, search_settings, settings):
    for queue in settings.HEALTH_QUEUES:
        heartbeat_record(queue=queue, hostname="celery@test")
    response = client.get("/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["failing"] == []
    assert body["checks"]["index"]["status"] == "warn" and "exact search" in body["checks"]["index"]["detail"]
    assert body["checks"]["gan"]["status"] == "warn"  # no checkpoint: reported, not failing
    assert client.get("/health/ready").status_code == 200


def test_old_index_degrades_when_a_limit_is_set(client, healthy, settings):
    settings.HEALTH_INDEX_MAX_AGE_HOURS = 1
    import json

    from search.indexing import index_store

    pointer = index_store().read_pointer()
    index_store().pointer_path.write_text(json.dumps({**pointer, "published": pointer["published"] - 7200}))
    response = client.get("/health/")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded" and response.json()["failing"] == ["index"]
    assert client.get("/health/ready").status_code == 200  # an old index still serves


def test_a_broken_index_on_this_host_fails_ready_and_health(client, healthy):
    from search.indexing import index_store

    store = index_store()
    (store.directory / store.read_pointer()["file"]).unlink()
    for url in ("/health/ready", "/health/"):
        response = client.get(url)
        assert response.status_code == 503, url
        body = response.json()
        assert body["status"] == "fail" and body["failing"] == ["index"] and "missing" in body["checks"]["index"]["detail"]


def test_ready_checks_the_database_and_the_index_only(client, healthy, monkeypatch):
    from django.db import OperationalError

    from atlas.ops import health

    def down():
        raise OperationalError("connection refused")

    def never():
        raise AssertionError("ready must not probe the broker or the workers")

    monkeypatch.setitem(health.CHECKS, "broker", (never, False))
    monkeypatch.setitem(health.CHECKS, "workers", (never, False))
    ready = client.get("/health/ready")
    assert ready.status_code == 200 and set(ready.json()["checks"]) == {"database", "index"}
    assert ready["Cache-Control"].startswith("max-age=0")
    monkeypatch.setitem(health.CHECKS, "database", (down, True))
    ready = client.get("/health/ready/")
    assert ready.status_code == 503 and ready.json()["failing"] == ["database"]
    assert "connection refused" in ready.json()["checks"]["database"]["detail"]


def test_live_answers_without_touching_the_database(client, monkeypatch):
    from django.db import connection

    def no_database(*args, **kwargs):
        raise AssertionError("live must not touch the database")

    monkeypatch.setattr(connection, "cursor", no_database)
    response = client.get("/health/live")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_heartbeat_task_records_its_worker_and_queue():
    heartbeat_task.apply(args=["indexing"])
    beat = WorkerHeartbeat.objects.get(queue="indexing")
    assert (timezone.now() - beat.seen_at).total_seconds() < 5
    heartbeat_task.apply(args=["indexing"])
    assert WorkerHeartbeat.objects.filter(queue="indexing").count() == 1  # one row per worker and queue


def test_heartbeats_are_scheduled_on_every_queue(settings):
    scheduled = {e["args"][0]: e for k, e in settings.CELERY_BEAT_SCHEDULE.items() if k.startswith("ops-heartbeat-")}
    assert set(scheduled) == set(settings.HEALTH_QUEUES)
    assert all(e["options"]["queue"] == q and e["options"]["expires"] for q, e in scheduled.items())
