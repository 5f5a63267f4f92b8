"""Prometheus metrics: request and search latency, queue depth, job outcomes, index and workers.

Request histograms are observed by RequestMetricsMiddleware in each process. Under gunicorn
with several workers set PROMETHEUS_MULTIPROC_DIR (scripts/gunicorn.conf.py does) so /metrics
adds up every worker's samples. Queue depth, job counts, index version and heartbeat ages are
read when /metrics is scraped (the database and the broker are shared, so any process can
answer); the broker read has the health probe's short timeout.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

logger = logging.getLogger("atlas.requests")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
REQUEST_SECONDS = Histogram(
    "atlas_http_request_duration_seconds",
    "Time to answer an HTTP request, by route pattern, method and status class.",
    ["route", "method", "status"],
    buckets=LATENCY_BUCKETS,
)
SEARCH_SECONDS = Histogram(
    "atlas_search_duration_seconds",
    "Time to answer a search request (pages and API: text, photo, similar), by route.",
    ["route", "status"],
    buckets=LATENCY_BUCKETS,
)


def _route(request: HttpRequest) -> tuple[str, str]:
    """(route pattern, url name): bounded label values, never the raw path (ids, queries)."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return "unmatched", ""  # 404s: one label, not one per probed path
    return "/" + (match.route or ""), match.url_name or ""


class RequestMetricsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        seconds = time.perf_counter() - started
        route, name = _route(request)
        status = f"{response.status_code // 100}xx"
        REQUEST_SECONDS.labels(route=route, method=request.method, status=status).observe(seconds)
        if "search" in name or "similar" in name or "search" in route:
            SEARCH_SECONDS.labels(route=route, status=status).observe(seconds)
        logger.info(
            "%s %s %s %.1f ms", request.method, route, response.status_code, seconds * 1000,
            extra={"method": request.method, "route": route, "status": response.status_code, "ms": round(seconds * 1000, 1)},
        )
        return response


class StateCollector:
    """Gauges read at scrape time from the shared database and broker."""

    def collect(self):
        yield from _safe(_queue_gauges)
        yield from _safe(_job_gauges)
        yield from _safe(_index_gauges)
        yield from _safe(_heartbeat_gauges)


def _safe(read):
    try:
        return list(read())
    except Exception:  # noqa: BLE001 - a part that cannot be read is left out, the scrape still answers
        logger.warning("metrics: %s could not be read", read.__name__, exc_info=True)
        return []


def _queue_gauges():
    from atlas.ops.services import queue_depths

    gauge = GaugeMetricFamily("atlas_queue_depth", "Messages waiting in a Celery queue (-1: broker unreachable).", labels=["queue"])
    for depth in queue_depths():
        gauge.add_metric([depth.queue], -1 if depth.messages is None else depth.messages)
    yield gauge


def _job_gauges():
    from django.db.models import Count

    from generation.models import GenerationJob
    from search.models import IndexBuild

    jobs = GaugeMetricFamily("atlas_jobs", "Jobs by kind and outcome (rows in the job tables).", labels=["kind", "status"])
    for kind, model in (("generation", GenerationJob), ("index_build", IndexBuild)):
        for row in model.objects.values("status").annotate(n=Count("id")):
            jobs.add_metric([kind, row["status"]], row["n"])
    yield jobs


def _index_gauges():
    from search.indexing import index_store

    pointer = index_store().read_pointer()
    if pointer is None:
        return
    yield GaugeMetricFamily("atlas_index_version", "Search index version this host serves.", value=int(pointer["version"]))
    yield GaugeMetricFamily("atlas_index_vectors", "Vectors in the served search index.", value=int(pointer.get("count") or 0))
    yield GaugeMetricFamily(
        "atlas_index_age_seconds", "Seconds since the served index was built.", value=time.time() - float(pointer.get("published", 0))
    )


def _heartbeat_gauges():
    from django.utils import timezone

    from atlas.ops.services import heartbeats_latest

    gauge = GaugeMetricFamily("atlas_worker_heartbeat_age_seconds", "Seconds since a worker last answered on a queue.", labels=["queue"])
    now = timezone.now()
    for queue, seen in heartbeats_latest().items():
        gauge.add_metric([queue], (now - seen).total_seconds())
    yield gauge


def metrics_text() -> bytes:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)  # every gunicorn worker's histograms, summed
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    out = generate_latest(registry)
    state = CollectorRegistry()
    state.register(StateCollector())
    return out + generate_latest(state)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return HttpResponse("metrics need a bearer token\n", status=401, content_type="text/plain")
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)
