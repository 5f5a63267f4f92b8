"""Celery tasks of the search app (queue "indexing"): thin adapters over services.

All are idempotent (an embedded image is skipped, a build publishes a new version, a done
chunk or a merged job returns at once), so acks_late is safe. Importing this module loads no model: the encoder loads on first use.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from search import indexing


@shared_task(acks_late=True, soft_time_limit=120, time_limit=180)
def embed_image_task(image_id: int) -> None:
    """After ingest (or a visibility change): store the image's vector, then schedule the index refresh."""
    report = indexing.embeddings_update(image_ids=[image_id])
    if report.embedded or report.dropped:
        indexing.index_refresh_soon()


@shared_task(acks_late=True, soft_time_limit=600, time_limit=660)
def index_refresh_task() -> int | None:
    """The debounced incremental update that makes new visible images searchable within a minute."""
    build = indexing.index_refresh()
    return build.pk if build else None


@shared_task(acks_late=True, soft_time_limit=3 * 3600, time_limit=3 * 3600 + 300)
def reindex_task(full: bool = False) -> int:
    """Nightly (beat) and on demand: embed what is new, drop what is gone, publish a new index."""
    return indexing.index_rebuild(full=full).pk


@shared_task(bind=True, acks_late=True, soft_time_limit=1800, time_limit=1900, max_retries=None)
def reindex_chunk_task(self, chunk_id: int) -> None:
    """One chunk of a distributed reindex; an error is retried SEARCH_REINDEX_CHUNK_RETRIES
    times, then the chunk (and, once nothing else runs, the job) is marked failed with it."""
    try:
        indexing.reindex_chunk_run(chunk_id=chunk_id, worker=self.request.hostname or "")
    except indexing.ReindexError as exc:  # another model in this worker: a retry would not help
        indexing.reindex_chunk_fail(chunk_id=chunk_id, error=str(exc))
        raise
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        if self.request.retries < settings.SEARCH_REINDEX_CHUNK_RETRIES:
            indexing.reindex_chunk_retrying(chunk_id=chunk_id, error=error)
            raise self.retry(exc=exc, countdown=settings.SEARCH_REINDEX_RETRY_SECONDS) from exc
        indexing.reindex_chunk_fail(chunk_id=chunk_id, error=error)
        raise


@shared_task(bind=True, acks_late=True, soft_time_limit=3 * 3600, time_limit=3 * 3600 + 300, max_retries=None)
def reindex_merge_task(self, job_id: int) -> None:
    """Every chunk is done: build and publish the index from their vectors."""
    try:
        indexing.reindex_job_merge(job_id=job_id)
    except indexing.IndexBuildBusy as exc:  # another build holds the lock: come back later
        raise self.retry(exc=exc, countdown=60) from exc
