"""Health: three endpoints for three readers.

* `/health/live` - the process answers (no database, no broker): for a supervisor that restarts
  a wedged process. Always 200 while the process can run a view.
* `/health/ready` - this host can serve: the database answers and the search index this host
  serves is readable. The load balancer's probe. 503 only for those two, so a dead GPU worker,
  a stale queue or a broker outage never takes a web host out of rotation.
* `/health/` - the full report for alerting: database, broker, index (version and age), worker
  heartbeats per queue, the active GAN checkpoint, each with its state. `status` is "ok",
  "degraded" (a part the pages do not need has failed: broker, workers, an index older than
  HEALTH_INDEX_MAX_AGE_HOURS; answered 200) or "fail" (this host cannot serve: 503).

Each check is short and bounded (the broker probe has a timeout); a check that raises reports
"fail" with the reason, never a 500. Why not django-health-check: every check here but the
database is specific to Atlas (index pointer, heartbeat rows, checkpoint), and the report
shape is documented and read by alerting; the library would add a dependency and keep all of
this code (docs/operations.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

OK, WARN, FAIL = "ok", "warn", "fail"  # warn: worth a look, still serving


@dataclass
class Check:
    status: str
    detail: str = ""
    data: dict = field(default_factory=dict)
    # A failure stops this host serving (ready fails, /health/ answers 503). None: the
    # registry's default for the check (CHECKS).
    serving: bool | None = None

    def as_dict(self) -> dict:
        return {"status": self.status, **({"detail": self.detail} if self.detail else {}), **self.data}


def check_database() -> Check:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return Check(OK, data={"vendor": connection.vendor})


def check_broker() -> Check:
    from atlas.ops.services import broker_problem

    problem = broker_problem()
    return Check(FAIL, problem) if problem else Check(OK)


def check_index() -> Check:
    """The index this host serves. None published yet: a warning (search answers by exact
    search over stored vectors). A pointer or file that cannot be read: this host is broken."""
    from search.index import IndexUnavailable
    from search.indexing import index_store

    store = index_store()
    try:
        pointer = store.read_pointer()
    except IndexUnavailable as exc:
        return Check(FAIL, str(exc))
    if pointer is None:
        return Check(WARN, "no search index has been published on this host yet (run `manage.py reindex`); "
                           "search answers by exact search over stored vectors")
    file = Path(store.directory) / str(pointer.get("file", ""))
    if not file.is_file():
        return Check(FAIL, f"the published index file {file.name} is missing from {store.directory}")
    age = max(0.0, time.time() - float(pointer.get("published", 0)))
    data = {"version": pointer["version"], "age_seconds": round(age), "vectors": pointer.get("count")}
    limit = settings.HEALTH_INDEX_MAX_AGE_HOURS * 3600
    if limit and age > limit:
        # Old but served: worth an alert, not a reason to stop serving.
        return Check(FAIL, f"the index is {age / 3600:.1f} hours old (limit {settings.HEALTH_INDEX_MAX_AGE_HOURS})",
                     data, serving=False)
    return Check(OK, data=data)


def check_workers() -> Check:
    from atlas.ops.services import heartbeats_latest

    latest = heartbeats_latest()
    now = timezone.now()
    ages = {q: round((now - latest[q]).total_seconds()) if q in latest else None for q in settings.HEALTH_QUEUES}
    stale = [q for q, age in ages.items() if age is None or age > settings.HEALTH_WORKER_MAX_AGE]
    data = {"heartbeat_age_seconds": ages}
    if stale:
        return Check(FAIL, f"no worker heartbeat within {settings.HEALTH_WORKER_MAX_AGE} s on queue(s): {', '.join(stale)}", data)
    return Check(OK, data=data)


def check_gan() -> Check:
    from generation.models import GanCheckpoint

    active = GanCheckpoint.objects.filter(is_active=True).first()
    if active is None:
        # Browsing and search do not need it; only gap filling does.
        return Check(WARN, "no active GAN checkpoint: gap filling cannot start")
    return Check(OK, data={"checkpoint": str(active), "id": active.pk})


# name -> (check, whether its failure stops this host serving)
CHECKS: dict[str, tuple[Callable[[], Check], bool]] = {
    "database": (check_database, True),
    "broker": (check_broker, False),
    "index": (check_index, True),
    "workers": (check_workers, False),
    "gan": (check_gan, False),
}
READY = ("database", "index")


def _run(name: str) -> Check:
    check, serving = CHECKS[name]
    try:
        part = check()
    except Exception as exc:  # noqa: BLE001 - a broken part is reported, not raised
        text = str(exc).strip()
        part = Check(FAIL, f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}")
    if part.serving is None:
        part.serving = serving
    return part


def health_report(names: tuple[str, ...] | None = None) -> tuple[int, dict]:
    """(HTTP status, body) over the named checks (all by default)."""
    parts = {name: _run(name) for name in (names or tuple(CHECKS))}
    failing = [name for name, part in parts.items() if part.status == FAIL]
    blocking = [name for name in failing if parts[name].serving]
    status = "fail" if blocking else "degraded" if failing else "ok"
    body = {"status": status, "failing": failing, "checks": {name: part.as_dict() for name, part in parts.items()}}
    return (503 if blocking else 200), body


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    code, body = health_report()
    return JsonResponse(body, status=code)


@never_cache
@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    code, body = health_report(READY)
    return JsonResponse(body, status=code)


@never_cache
@require_GET
def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})
