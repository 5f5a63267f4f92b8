"""Celery tasks of the search app (queue "indexing"): thin adapters over services.

Both are idempotent (an embedded image is skipped, a build publishes a new version), so
acks_late is safe. Importing this module loads no model: the encoder loads on first use.
"""

from __future__ import annotations

from celery import shared_task

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
