"""Celery tasks of gap filling (queue "generation": the GPU host's worker, -c 1, prefetch 1).

Thin adapters over generation.gaps: they take ids, call one service, and own only retries and
time limits. `acks_late` is safe because the service is idempotent by construction (see
generation/gaps.py); `reject_on_worker_lost` puts the message back when the pool child dies.
Importing this module loads no model and touches no device.
"""

from __future__ import annotations

import logging

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_ready
from django.db import InterfaceError, OperationalError

from generation import gaps

logger = logging.getLogger(__name__)

# Database hiccups, storage errors and a batch that overran its soft limit: worth a retry.
TRANSIENT = (OperationalError, InterfaceError, OSError, SoftTimeLimitExceeded)


class _JobTask(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        # Retries ran out (or an unexpected error): the row says so, not only the worker log.
        job_id = args[0] if args else kwargs.get("job_id")
        if job_id is not None:
            gaps.generation_job_fail(job_id=job_id, error=f"{type(exc).__name__}: {exc}")


@shared_task(
    base=_JobTask,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    # One call works for GAP_FILL_TASK_SECONDS (60 s) and then hands over to a new task, so
    # these limits only bound a single batch that hangs.
    soft_time_limit=600,
    time_limit=660,
    autoretry_for=TRANSIENT,
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=6,
)
def generation_job_run_task(self, job_id: int) -> str:
    """Generate and store the job's missing images, batch by batch, for a while."""
    report = gaps.generation_job_run(job_id=job_id)
    if report.outcome == "continue":
        generation_job_run_task.delay(job_id)
    return report.outcome


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def generation_jobs_recover_task() -> list[int]:
    """Re-enqueue active jobs whose worker died or whose lease expired."""
    return gaps.generation_jobs_recover()


@worker_ready.connect
def _recover_on_worker_start(sender=None, **kwargs) -> None:
    # A worker that was killed left its jobs "running" under a dead owner; as soon as any
    # worker is back, a generation worker looks for them (the killed task's own message only
    # comes back after the broker's visibility timeout).
    try:
        generation_jobs_recover_task.delay()
    except Exception:  # noqa: BLE001 - the broker being down must not stop the worker starting
        logger.exception("could not enqueue the generation job recovery")
