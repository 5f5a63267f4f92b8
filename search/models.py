"""Stored embeddings (one per image and model version) and index builds (job state as rows)."""

from __future__ import annotations

import numpy as np
from django.db import models

from atlas.models import Image


class ImageEmbedding(models.Model):
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="embeddings")
    model_version = models.CharField(max_length=120, help_text="Encoder name + checkpoint hash that made the vector.")
    vector = models.BinaryField(help_text="L2-normalised float32, little-endian.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["image", "model_version"], name="one_embedding_per_model")]
        indexes = [models.Index(fields=["model_version", "image"])]

    def __str__(self) -> str:
        return f"{self.image_id}@{self.model_version}"

    @property
    def array(self) -> np.ndarray:
        return np.frombuffer(bytes(self.vector), dtype="<f4")


class IndexBuild(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    model_version = models.CharField(max_length=120, blank=True)
    full = models.BooleanField(default=False, help_text="Rebuilt from all stored vectors (else: updated in place).")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    kind = models.CharField(max_length=10, blank=True, help_text="flat or ivf")
    embedded_count = models.PositiveIntegerField(default=0, help_text="Images embedded by this build.")
    dropped_count = models.PositiveIntegerField(default=0, help_text="Vectors dropped: deleted or non-public images.")
    vector_count = models.PositiveIntegerField(default=0, help_text="Vectors in the published index.")
    path = models.CharField(max_length=500, blank=True)
    embed_seconds = models.FloatField(null=True, blank=True)
    index_seconds = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"index build {self.pk} ({self.status})"

    @property
    def version(self) -> int:
        return self.pk
