"""Celery tasks of the catalogue (queue "default"): thin adapters over services."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True, soft_time_limit=1800, time_limit=1900)
def export_job_run_task(job_id: int) -> None:
    """Build one export zip. Idempotent (a finished job is skipped), so acks_late is safe."""
    from atlas.services.exports import export_job_run

    export_job_run(job_id=job_id)


@shared_task(acks_late=True, soft_time_limit=3600, time_limit=3700)
def orphan_files_sweep_task() -> None:
    """Daily: remove files left by ingestions that died before their row committed."""
    from atlas.services.orphans import orphan_files_sweep

    orphan_files_sweep()
