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


class ReindexJob(models.Model):
    """A full re-embedding fanned out over Celery workers in chunks of image ids (docs/scaling.md).

    Each chunk is a ReindexChunk row; when every chunk is done, one merge builds and publishes
    the index from the vectors the chunks stored. Progress is read from the chunk rows."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"  # chunks are being embedded
        MERGING = "merging", "Merging"  # every chunk done: the index is being built
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"  # a chunk failed after its retries (see error), or the merge did

    model_version = models.CharField(max_length=120, help_text="The encoder every chunk must embed with.")
    full = models.BooleanField(default=True, help_text="The merge rebuilds the index from all stored vectors.")
    chunk_size = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    image_count = models.PositiveIntegerField(default=0, help_text="Images to embed when the job was made.")
    build = models.ForeignKey(IndexBuild, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"reindex job {self.pk} ({self.status})"


class ReindexChunk(models.Model):
    """Image ids first_id..last_id of a ReindexJob. Running it twice is harmless: it embeds only
    the images of its range that still lack a vector for the job's model."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    job = models.ForeignKey(ReindexJob, on_delete=models.CASCADE, related_name="chunks")
    number = models.PositiveIntegerField()
    first_id = models.BigIntegerField()
    last_id = models.BigIntegerField()
    image_count = models.PositiveIntegerField(help_text="Images of the range to embed when the job was made.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    embedded_count = models.PositiveIntegerField(default=0)
    unreadable = models.JSONField(default=list, blank=True, help_text="Image ids whose files could not be read.")
    worker = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True, help_text="The last attempt's error.")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job", "number"]
        constraints = [models.UniqueConstraint(fields=["job", "number"], name="one_chunk_number_per_job")]

    def __str__(self) -> str:
        return f"chunk {self.number} of job {self.job_id} (ids {self.first_id}-{self.last_id}, {self.status})"
