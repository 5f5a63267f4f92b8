"""Celery tasks of operations: thin adapters over atlas.ops.services."""

from __future__ import annotations

from celery import shared_task

from atlas.ops import services


@shared_task(bind=True, ignore_result=True, soft_time_limit=20, time_limit=30)
def heartbeat_task(self, queue: str) -> None:
    """Sent by beat to each queue (options.queue); the worker that takes it records itself."""
    services.heartbeat_record(queue=queue, hostname=self.request.hostname or "unknown")
