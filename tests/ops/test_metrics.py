"""/metrics: Prometheus text with request and search latency, queue depth, jobs, index."""

from __future__ import annotations

import json
import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from atlas.ops.logs import JsonFormatter
from atlas.ops.services import heartbeat_record
from generation.models import GanCheckpoint, GenerationJob

pytestmark = pytest.mark.django_db


def _samples(text: str) -> dict:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _value(samples: dict, name: str, **labels) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


def test_requests_and_searches_are_timed(client, indexed):
    before = _samples(client.get("/metrics").content.decode())
    assert client.get("/search/", {"q": "melanoma"}).status_code == 200
    assert client.get("/conditions/").status_code == 200
    after = _samples(client.get("/metrics").content.decode())
    count = "atlas_http_request_duration_seconds_count"
    assert _value(after, count, route="/search/", status="2xx") == _value(before, count, route="/search/", status="2xx") + 1
    assert _value(after, count, route="/conditions/") >= 1
    search = "atlas_search_duration_seconds_count"
    assert _value(after, search, route="/search/") == _value(before, search, route="/search/") + 1
    assert _value(after, search, route="/conditions/") == 0  # only searches in the search histogram


def test_state_gauges(client, indexed, settings):
    _, build = indexed
    checkpoint = GanCheckpoint.objects.create(path="g.pt", run="r", preset="fast", step=1, data_fingerprint="f")
    GenerationJob.objects.create(checkpoint=checkpoint, target=1, seed=1, planned_total=1, status=GenerationJob.Status.FAILED)
    heartbeat_record(queue="default", hostname="celery@a")
    samples = _samples(client.get("/metrics").content.decode())
    assert _value(samples, "atlas_index_version") == build.pk
    assert _value(samples, "atlas_index_vectors") == 6
    assert _value(samples, "atlas_jobs", kind="generation", status="failed") == 1
    assert _value(samples, "atlas_jobs", kind="index_build", status="succeeded") == 1
    for queue in settings.HEALTH_QUEUES:
        assert _value(samples, "atlas_queue_depth", queue=queue) == 0
    assert 0 <= _value(samples, "atlas_worker_heartbeat_age_seconds", queue="default") < 60


def test_queue_depth_counts_waiting_messages(client, settings, tmp_path):
    # A private filesystem broker: never the shared var/broker/ a local worker may be reading.
    (tmp_path / "q").mkdir()
    (tmp_path / "c").mkdir()
    settings.CELERY_BROKER_URL = "filesystem://localhost//"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(tmp_path / "q"), "data_folder_out": str(tmp_path / "q"), "control_folder": str(tmp_path / "c"),
    }
    from atlas.ops.services import _connection

    with _connection(1.0) as conn:
        queue = conn.SimpleQueue("indexing")
        queue.put({"n": 1})
        queue.put({"n": 2})
        queue.close()
    samples = _samples(client.get("/metrics").content.decode())
    assert _value(samples, "atlas_queue_depth", queue="indexing") == 2
    assert _value(samples, "atlas_queue_depth", queue="default") == 0


def test_unreachable_broker_reads_minus_one(client, settings):
    from tests.ops.conftest import free_port

    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    settings.HEALTH_BROKER_TIMEOUT = 0.3
    response = client.get("/metrics")
    assert response.status_code == 200
    assert _value(_samples(response.content.decode()), "atlas_queue_depth", queue="default") == -1


def test_token_protects_metrics(client, settings):
    settings.METRICS_TOKEN = "s3cret-token"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token").status_code == 200


def test_json_log_lines_carry_extra_fields():
    record = logging.LogRecord("atlas.requests", logging.INFO, __file__, 1, "GET %s", ("search/",), None)
    record.status, record.ms = 200, 12.5
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "GET search/" and line["level"] == "INFO" and line["logger"] == "atlas.requests"
    assert line["status"] == 200 and line["ms"] == 12.5 and line["time"].endswith("+00:00")
