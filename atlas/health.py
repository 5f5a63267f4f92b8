"""/health/: 200 when every part works, 503 naming the parts that do not.

Parts: database, broker (the task queue), search index (version and age), worker heartbeats
per queue, the active GAN checkpoint. Each check is short and bounded (the broker probe has a
timeout); a check that raises reports "fail" with the reason, never a 500. Load balancers
poll it, so it reads little: one query per part.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

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
    from search.index import IndexUnavailable
    from search.indexing import index_store

    try:
        pointer = index_store().read_pointer()
    except IndexUnavailable as exc:
        return Check(FAIL, str(exc))
    if pointer is None:
        return Check(FAIL, "no search index has been published on this host yet (run `manage.py reindex`)")
    age = max(0.0, time.time() - float(pointer.get("published", 0)))
    data = {"version": pointer["version"], "age_seconds": round(age), "vectors": pointer.get("count")}
    limit = settings.HEALTH_INDEX_MAX_AGE_HOURS * 3600
    if limit and age > limit:
        return Check(FAIL, f"the index is {age / 3600:.1f} hours old (limit {settings.HEALTH_INDEX_MAX_AGE_HOURS})", data)
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


CHECKS = {
    "database": check_database,
    "broker": check_broker,
    "index": check_index,
    "workers": check_workers,
    "gan": check_gan,
}


def health_report() -> tuple[bool, dict]:
    parts = {}
    for name, check in CHECKS.items():
        try:
            parts[name] = check()
        except Exception as exc:  # noqa: BLE001 - a broken part is reported, not raised
            parts[name] = Check(FAIL, f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")
    failing = [name for name, part in parts.items() if part.status == FAIL]
    return not failing, {
        "status": "ok" if not failing else "fail",
        "failing": failing,
        "checks": {name: part.as_dict() for name, part in parts.items()},
    }


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    healthy, body = health_report()
    return JsonResponse(body, status=200 if healthy else 503)
