"""One row per (queue, worker host): when that worker last answered a heartbeat task."""

from __future__ import annotations

from django.db import models


class WorkerHeartbeat(models.Model):
    queue = models.CharField(max_length=64)
    hostname = models.CharField(max_length=255, help_text="Celery's worker name (celery@host).")
    seen_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["queue", "hostname"], name="one_heartbeat_per_worker_queue")]

    def __str__(self) -> str:
        return f"{self.hostname} on {self.queue} at {self.seen_at:%Y-%m-%d %H:%M:%S}"
