"""Distributed reindex (search.indexing.reindex_job_*): chunks, progress, merge, failure, resume.

The services are called directly here, in order; tests/search/test_reindex_broker.py runs the
same job on real Celery workers."""

from __future__ import annotations

import pytest

from search import indexing
from search.models import ImageEmbedding, IndexBuild, ReindexChunk, ReindexJob

pytestmark = pytest.mark.django_db


@pytest.fixture
def seven(search_settings, add_image):
    return [add_image(slug, skin_type=t) for slug in ("melanoma", "psoriasis") for t in (1, 3, 5)] + [
        add_image("tinea", skin_type=None)
    ]


def _create(django_capture_on_commit_callbacks, **kwargs) -> tuple[ReindexJob, int]:
    with django_capture_on_commit_callbacks() as queued:
        job = indexing.reindex_job_create(**kwargs)
    return job, len(queued)


def _run(chunk: ReindexChunk, django_capture_on_commit_callbacks) -> int:
    with django_capture_on_commit_callbacks() as queued:
        indexing.reindex_chunk_run(chunk_id=chunk.pk, worker="test")
    return len(queued)


def test_a_job_embeds_in_chunks_and_merges_once_every_chunk_is_done(seven, django_capture_on_commit_callbacks):
    job, queued = _create(django_capture_on_commit_callbacks, chunk_size=3)
    chunks = list(job.chunks.order_by("number"))
    assert queued == 3 and [c.image_count for c in chunks] == [3, 3, 1] and job.image_count == 7
    ids = sorted(image.pk for image in seven)
    assert [(c.first_id, c.last_id) for c in chunks] == [(ids[0], ids[2]), (ids[3], ids[5]), (ids[6], ids[6])]

    assert _run(chunks[0], django_capture_on_commit_callbacks) == 0  # not the last: no merge yet
    progress = indexing.reindex_progress(job_id=job.pk)
    assert (progress.done, progress.total, progress.embedded) == (1, 3, 3)
    assert "chunks 1/3 done" in progress.line() and ImageEmbedding.objects.count() == 3
    assert _run(chunks[2], django_capture_on_commit_callbacks) == 0
    assert _run(chunks[1], django_capture_on_commit_callbacks) == 1  # the last one queues the merge
    job.refresh_from_db()
    assert job.status == ReindexJob.Status.MERGING

    again = indexing.reindex_chunk_run(chunk_id=chunks[1].pk)  # a redelivered message: nothing to do
    assert again.embedded_count == 3 and ImageEmbedding.objects.count() == 7

    job = indexing.reindex_job_merge(job_id=job.pk)
    assert job.status == ReindexJob.Status.SUCCEEDED and job.build.vector_count == 7
    assert job.build.embedded_count == 0  # the chunks embedded everything; the merge only built
    assert indexing.reindex_job_merge(job_id=job.pk).build_id == job.build_id  # merged once


def test_a_failed_chunk_fails_the_job_by_name_and_resume_finishes_it(seven, django_capture_on_commit_callbacks):
    job, _ = _create(django_capture_on_commit_callbacks, chunk_size=4)
    first, second = job.chunks.order_by("number")
    indexing.reindex_chunk_retrying(chunk_id=second.pk, error="OSError: disk went away")
    _run(first, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    assert job.status == ReindexJob.Status.RUNNING  # the second is still to be retried
    indexing.reindex_chunk_fail(chunk_id=second.pk, error="OSError: disk went away")
    job.refresh_from_db()
    assert job.status == ReindexJob.Status.FAILED
    assert f"chunk 1 (image ids {second.first_id}-{second.last_id})" in job.error and "disk went away" in job.error
    assert not IndexBuild.objects.exists()  # nothing half-done was published

    with django_capture_on_commit_callbacks() as queued:
        job = indexing.reindex_job_resume(job_id=job.pk)
    assert job.status == ReindexJob.Status.RUNNING and len(queued) == 1  # only the unfinished chunk
    assert _run(ReindexChunk.objects.get(pk=second.pk), django_capture_on_commit_callbacks) == 1
    job = indexing.reindex_job_merge(job_id=job.pk)
    assert job.status == ReindexJob.Status.SUCCEEDED and job.build.vector_count == 7


def test_nothing_to_embed_goes_straight_to_the_merge(seven, django_capture_on_commit_callbacks):
    indexing.embeddings_update()
    job, queued = _create(django_capture_on_commit_callbacks)
    assert job.status == ReindexJob.Status.MERGING and queued == 1 and job.chunks.count() == 0


def test_a_worker_with_another_model_refuses_its_chunk(seven, django_capture_on_commit_callbacks):
    job, _ = _create(django_capture_on_commit_callbacks)
    ReindexJob.objects.filter(pk=job.pk).update(model_version="another-model@0000")
    with pytest.raises(indexing.ReindexError, match="another-model"):
        indexing.reindex_chunk_run(chunk_id=job.chunks.get().pk)
    assert not ImageEmbedding.objects.exists()


def test_hidden_images_are_left_out_and_lose_their_vectors(seven, add_image, django_capture_on_commit_callbacks):
    hidden = add_image("melanoma", skin_type=2, is_public=False)
    version = indexing.encoder_get().version
    ImageEmbedding.objects.create(image=hidden, model_version=version, vector=bytes(4 * 8))  # from when it was public
    job, _ = _create(django_capture_on_commit_callbacks, chunk_size=100)
    assert job.image_count == 7 and not ImageEmbedding.objects.filter(image=hidden).exists()


def test_bad_chunk_size_and_unknown_job_are_refused(seven):
    with pytest.raises(indexing.ReindexError, match="chunk size"):
        indexing.reindex_job_create(chunk_size=0)
    for call in (indexing.reindex_job_resume, indexing.reindex_job_merge, indexing.reindex_progress):
        with pytest.raises(indexing.ReindexError, match="no reindex job"):
            call(job_id=999_999)
