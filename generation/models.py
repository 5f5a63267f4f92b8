"""GAN checkpoints known to the service (gap-filling jobs join this app in a later issue)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class GanCheckpoint(models.Model):
    """One generator checkpoint written by `train_gan`; at most one is active (used for sampling)."""

    path = models.CharField(max_length=500, unique=True, help_text="File path, relative to GAN_ROOT when inside it.")
    run = models.CharField(max_length=120, help_text="Training run directory name.")
    preset = models.CharField(max_length=20)
    step = models.PositiveIntegerField()
    metrics = models.JSONField(default=dict, blank=True, help_text="Loss terms at this step; scores when evaluated.")
    data_fingerprint = models.CharField(max_length=64)
    code_version = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    is_active = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["is_active"], condition=Q(is_active=True), name="one_active_gan_checkpoint"),
        ]

    def __str__(self) -> str:
        return f"{self.run}@{self.step}{' (active)' if self.is_active else ''}"
