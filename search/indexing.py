"""Embeddings and index builds (the Django side): embed what is new, build, publish.

`index_rebuild` embeds public images that have no vector for the current model, then updates
the live index (or rebuilds it) and publishes a new version with an atomic swap; job state
lives on the IndexBuild row. The ML lives in encoder.py and index.py.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.db.models import Count, F, Sum
from django.utils import timezone
from PIL import Image as PILImage

from atlas.models import Image, public_q
from atlas.services.ingestion import stored_image_pixels
from search import distribution
from search.encoder import Encoder, EncoderUnavailable, load_encoder
from search.errors import SearchUnavailable
from search.index import IndexSpec, IndexStore, IndexSuperseded, IndexUnavailable, VectorIndex, choose_spec
from search.models import ImageEmbedding, IndexBuild, ReindexChunk, ReindexJob
from search.onnx_runtime import OnnxEncoder, load_onnx_encoder

logger = logging.getLogger(__name__)


# --- the encoder ----------------------------------------------------------------------------


def encoder_get() -> Encoder:
    """The process-wide encoder for the configured model (loaded on first use)."""
    try:
        return load_encoder(
            settings.SEARCH_CLIP_MODEL,
            str(settings.SEARCH_CLIP_PRETRAINED),
            settings.SEARCH_CLIP_DEVICE,
            settings.SEARCH_EMBED_BATCH_SIZE,
            settings.SEARCH_TORCH_THREADS,
        )
    except EncoderUnavailable as exc:
        raise SearchUnavailable(str(exc)) from exc


def query_encoder_get() -> Encoder | OnnxEncoder:
    """The encoder that embeds queries in this process: ONNX Runtime (no torch) unless
    SEARCH_QUERY_RUNTIME=torch. Same vectors, same version string (tests compare them)."""
    if settings.SEARCH_QUERY_RUNTIME == "torch":
        return encoder_get()
    try:
        return load_onnx_encoder(
            settings.SEARCH_CLIP_MODEL,
            str(settings.SEARCH_CLIP_PRETRAINED),
            settings.SEARCH_ONNX_THREADS,
            settings.SEARCH_EMBED_BATCH_SIZE,
        )
    except EncoderUnavailable as exc:
        raise SearchUnavailable(str(exc)) from exc


def open_pixels(image: Image) -> PILImage.Image:
    # The thumbnail (256 px) is larger than the default model's input and much cheaper to decode.
    for name in (image.thumbnail.name, image.file.name):
        if name and default_storage.exists(name):
            return stored_image_pixels(name)
    raise FileNotFoundError(f"image {image.pk} has no stored file")


# --- embeddings -----------------------------------------------------------------------------


@dataclass
class EmbedReport:
    model_version: str
    embedded: int = 0
    dropped: int = 0
    failed: list[int] = field(default_factory=list)


def embeddings_update(*, image_ids: Iterable[int] | None = None, progress: bool = False, chunk: int = 256) -> EmbedReport:
    """Embed public images that have no vector for the current model; drop non-public ones' vectors.

    Idempotent: a second run embeds nothing. Deleted images lose their vectors by cascade.
    """
    encoder = encoder_get()
    report = EmbedReport(model_version=encoder.version)
    hidden = ImageEmbedding.objects.exclude(public_q("image__"))
    if image_ids is not None:
        image_ids = list(image_ids)
        hidden = hidden.filter(image_id__in=image_ids)
    report.dropped = hidden.delete()[0]

    todo = Image.objects.public().exclude(embeddings__model_version=encoder.version).order_by("id")
    if image_ids is not None:
        todo = todo.filter(id__in=image_ids)
    pending = list(todo.values_list("id", flat=True))
    for start in range(0, len(pending), chunk):
        batch = list(Image.objects.filter(id__in=pending[start : start + chunk]).order_by("id"))
        pixels, kept = [], []
        for image in batch:
            try:
                pixels.append(open_pixels(image))
                kept.append(image)
            except (OSError, ValueError) as exc:
                logger.warning("cannot embed image %s: %s", image.pk, exc)
                report.failed.append(image.pk)
        if not kept:
            continue
        vectors = encoder.embed_images(pixels, progress=progress)
        ImageEmbedding.objects.bulk_create(
            [ImageEmbedding(image=im, model_version=encoder.version, vector=_to_bytes(v)) for im, v in zip(kept, vectors, strict=True)],
            ignore_conflicts=True,  # a concurrent run embedded it first: same vector, nothing to do
        )
        report.embedded += len(kept)
    return report


def _to_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def stored_vectors(model_version: str, image_ids: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) of public images for one model version."""
    rows = ImageEmbedding.objects.filter(public_q("image__"), model_version=model_version)
    if image_ids is not None:
        rows = rows.filter(image_id__in=image_ids)
    pairs = list(rows.order_by("image_id").values_list("image_id", "vector"))
    if not pairs:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    ids = np.fromiter((p[0] for p in pairs), dtype=np.int64, count=len(pairs))
    vectors = np.stack([np.frombuffer(bytes(p[1]), dtype="<f4") for p in pairs])
    return ids, vectors


# --- freshness: new visible images searchable within a minute --------------------------------

_REFRESH_KEY = "search:index-refresh-scheduled"


def index_refresh_soon() -> bool:
    """Schedule one incremental index update SEARCH_FRESH_DELAY_SECONDS from now (debounced).

    Called by embed_image_task (the after-ingest task, also run when a curator publishes an
    image or a reviewer approves one) once the vector is stored. Every call inside the delay joins the one scheduled
    update, so a gap-filling job that ingests 200 images makes a handful of builds, not 200.
    True when this call scheduled the update, False when one was already waiting.
    """
    if not cache.add(_REFRESH_KEY, time.time(), timeout=settings.SEARCH_FRESH_DELAY_SECONDS + 300):
        return False
    from search.tasks import index_refresh_task

    try:
        index_refresh_task.apply_async(countdown=settings.SEARCH_FRESH_DELAY_SECONDS)
    except Exception:  # a broker outage: the nightly reindex still catches up
        cache.delete(_REFRESH_KEY)
        logger.exception("could not schedule an index refresh")
        return False
    return True


REFRESH_LOCK_WAIT_SECONDS = 20.0


def index_refresh() -> IndexBuild | None:
    """The scheduled incremental update: publish what was embedded since the live version.

    When another build holds the build lock (the nightly one, a manual reindex), this one
    does not queue behind it: it schedules itself again and returns None.
    """
    # Cleared first: an image made visible while this build runs schedules the next one.
    cache.delete(_REFRESH_KEY)
    try:
        with index_build_lock(wait_seconds=REFRESH_LOCK_WAIT_SECONDS):
            return _index_rebuild(full=False, progress=False)
    except IndexBuildBusy:
        logger.info("an index build is running: the refresh is scheduled again")
        index_refresh_soon()
        return None


def index_searchable_since() -> dict:
    """When the live index was published and what it holds; pages say from it when new images show up."""
    latest = IndexBuild.objects.filter(status=IndexBuild.Status.SUCCEEDED).order_by("-finished_at", "-id").first()
    return {
        "version": latest.pk if latest else None,
        "published_at": latest.finished_at if latest else None,
        "vectors": latest.vector_count if latest else 0,
        "refresh_scheduled": bool(cache.get(_REFRESH_KEY)),
        "delay_seconds": settings.SEARCH_FRESH_DELAY_SECONDS,
    }


# --- index builds ---------------------------------------------------------------------------


def index_store() -> IndexStore:
    return IndexStore(settings.SEARCH_INDEX_DIR)


def _spec_for(n: int) -> IndexSpec:
    return choose_spec(n, flat_max=settings.SEARCH_INDEX_FLAT_MAX, nprobe=settings.SEARCH_INDEX_NPROBE)


class IndexBuildBusy(SearchUnavailable):
    """Another index build held the build lock for longer than we may wait."""


# PostgreSQL advisory lock key of index builds ("ATLASIDX" as a number).
BUILD_LOCK_KEY = int.from_bytes(b"ATLASIDX", "big") & 0x7FFF_FFFF_FFFF_FFFF


@contextmanager
def index_build_lock(*, wait_seconds: float | None = None):
    """Single flight: one index build at a time. PostgreSQL: a session advisory lock, shared
    by every host; SQLite (one host): a file lock in SEARCH_INDEX_DIR. Both go when their
    process dies, so a killed build never blocks the next one. Raises IndexBuildBusy after
    `wait_seconds` (default SEARCH_INDEX_BUILD_WAIT_SECONDS)."""
    wait = settings.SEARCH_INDEX_BUILD_WAIT_SECONDS if wait_seconds is None else wait_seconds
    deadline = time.monotonic() + wait
    busy = IndexBuildBusy(f"another index build is running (waited {wait:g} s); try again later")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            while True:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [BUILD_LOCK_KEY])
                if cursor.fetchone()[0]:
                    break
                if time.monotonic() >= deadline:
                    raise busy
                time.sleep(0.2)
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [BUILD_LOCK_KEY])
        return
    directory = Path(settings.SEARCH_INDEX_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".build.lock", "a") as lock:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise busy from None
                time.sleep(0.2)
        yield


def index_rebuild(*, full: bool = False, progress: bool = False) -> IndexBuild:
    """Embed what is new, then publish a new index version (atomic swap); job state on the row.

    Incremental (default): load the live index, remove ids whose images are gone or hidden,
    add the new vectors. Full (or when the model, or the index layout for this size, changed,
    or the live index is unreadable): rebuild from all stored vectors.

    One build at a time (index_build_lock); the row, whose id is the version, is created
    under the lock, so versions go live in order. Should a newer version be live anyway
    (fetched from another host), this one is not published (IndexSuperseded -> failed).
    """
    with index_build_lock():
        return _index_rebuild(full=full, progress=progress)


def _index_rebuild(*, full: bool, progress: bool) -> IndexBuild:
    build = IndexBuild.objects.create(full=full)
    try:
        started = time.monotonic()
        report = embeddings_update(progress=progress)
        build.model_version = report.model_version
        build.embedded_count = report.embedded
        build.embed_seconds = time.monotonic() - started

        started = time.monotonic()
        with _faiss_threads(os.cpu_count() or 1):
            index, build.full, build.dropped_count = _updated_index(report.model_version, full=full)
        if build.full:  # nothing was removed from a live index; count the vectors deleted instead
            build.dropped_count = report.dropped
        build.index_seconds = time.monotonic() - started
        if len(index) == 0:
            raise SearchUnavailable("no embedded public images: nothing to index")
        try:
            build.path = str(index_store().publish(index, version=build.pk, model_version=report.model_version))
        except IndexSuperseded as exc:
            raise SearchUnavailable(str(exc)) from exc
        if settings.SEARCH_INDEX_PUBLISH:  # web replicas on other hosts fetch it from storage
            distribution.index_upload(store=index_store())
        build.kind, build.vector_count = index.spec.kind, len(index)
        build.status = IndexBuild.Status.SUCCEEDED
    except Exception as exc:
        build.status, build.error = IndexBuild.Status.FAILED, f"{type(exc).__name__}: {exc}"
        logger.exception("index build %s failed", build.pk)
        raise
    finally:
        build.finished_at = timezone.now()
        build.save()
    return build


def _updated_index(model_version: str, *, full: bool) -> tuple[VectorIndex, bool, int]:
    """The index to publish, whether it was built from scratch, and how many ids it dropped."""
    wanted = set(
        ImageEmbedding.objects.filter(public_q("image__"), model_version=model_version).values_list("image_id", flat=True)
    )
    live = None if full else _live_for_update(model_version, len(wanted))
    if live is None:
        ids, vectors = stored_vectors(model_version)
        if len(ids) == 0:
            return VectorIndex.empty(1, IndexSpec("flat")), True, 0
        return VectorIndex.build(ids, vectors, spec=_spec_for(len(ids))), True, 0
    present = set(live.ids().tolist())
    dropped = live.remove(np.fromiter(present - wanted, dtype=np.int64))
    new_ids = sorted(wanted - present)
    parts = [stored_vectors(model_version, new_ids[start : start + 5000]) for start in range(0, len(new_ids), 5000)]
    if parts:  # one add: each add re-sorts the whole id and vector arrays
        live.add(np.concatenate([ids for ids, _ in parts]), np.concatenate([vectors for _, vectors in parts]))
    return live, False, dropped


def _live_for_update(model_version: str, size: int) -> VectorIndex | None:
    if settings.SEARCH_INDEX_PUBLISH:  # a fresh worker host starts from the newest published version
        distribution.index_fetch_quietly(store=index_store())
    try:
        index, pointer = index_store().load_current(mmap=False)  # a private copy: this one is updated
    except IndexUnavailable as exc:
        logger.warning("rebuilding the index from scratch: %s", exc)
        return None
    if pointer.get("model_version") != model_version:
        logger.info("model changed (%s -> %s): full rebuild", pointer.get("model_version"), model_version)
        return None
    wanted = _spec_for(size)
    if index.spec.kind != wanted.kind or (wanted.kind == "ivf" and not index.spec.nlist / 4 <= wanted.nlist <= index.spec.nlist * 4):
        # The collection grew (or shrank) past what the live layout was trained for.
        logger.info("collection size %d calls for a %s index with %d lists: full rebuild", size, wanted.kind, wanted.nlist)
        return None
    return index



@contextmanager
def _faiss_threads(count: int):
    """All cores for building an index (k-means, adding), then back to the query setting."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def after_demo_seed(summary) -> str:
    """An ATLAS_AFTER_DEMO_SEED hook: embed and index new demo images when a model exists."""
    try:
        build = index_rebuild()
    except SearchUnavailable as exc:
        return f"search: not indexed yet ({exc})"
    return f"search: index version {build.pk} with {build.vector_count} vectors (embedded {build.embedded_count})"


# --- distributed re-embedding: a job of chunks fanned out over Celery workers ----------------


class ReindexError(SearchUnavailable):
    """A reindex job cannot run as asked (unknown job, another model in the worker)."""


def reindex_job_create(*, full: bool = False, chunk_size: int | None = None) -> ReindexJob:
    """Split the public images that lack a vector for the current model into chunks of
    consecutive ids, one row each, and queue one task per chunk (after commit).

    When every chunk is done the last one queues the merge (reindex_job_merge). With nothing to
    embed the merge is queued at once. Vectors of images no longer public are dropped first."""
    from search.tasks import reindex_chunk_task, reindex_merge_task

    size = settings.SEARCH_REINDEX_CHUNK_SIZE if chunk_size is None else chunk_size
    if size < 1:
        raise ReindexError("the chunk size must be at least 1")
    model_version = encoder_get().version
    with transaction.atomic():
        ImageEmbedding.objects.exclude(public_q("image__")).delete()
        pending = list(
            Image.objects.public().exclude(embeddings__model_version=model_version).order_by("id").values_list("id", flat=True)
        )
        job = ReindexJob.objects.create(model_version=model_version, full=full, chunk_size=size, image_count=len(pending))
        chunks = ReindexChunk.objects.bulk_create(
            ReindexChunk(job=job, number=n, first_id=ids[0], last_id=ids[-1], image_count=len(ids))
            for n, ids in enumerate(pending[start : start + size] for start in range(0, len(pending), size))
        )
        if chunks:
            for chunk in chunks:
                reindex_chunk_task.delay_on_commit(chunk.pk)
        else:
            ReindexJob.objects.filter(pk=job.pk).update(status=ReindexJob.Status.MERGING)
            reindex_merge_task.delay_on_commit(job.pk)
    job.refresh_from_db()
    return job


def reindex_chunk_run(*, chunk_id: int, worker: str = "") -> ReindexChunk:
    """Embed what chunk `chunk_id` still lacks, mark it done, and queue the merge when it was the
    last. Idempotent: a done chunk returns at once; a rerun embeds only what is still missing."""
    chunk = ReindexChunk.objects.select_related("job").filter(pk=chunk_id).first()
    if chunk is None:
        raise ReindexError(f"no reindex chunk {chunk_id}")
    if chunk.status == ReindexChunk.Status.DONE or chunk.job.status != ReindexJob.Status.RUNNING:
        return chunk
    ReindexChunk.objects.filter(pk=chunk.pk).update(
        status=ReindexChunk.Status.RUNNING, attempts=F("attempts") + 1, worker=worker[:200], started_at=timezone.now()
    )
    version = encoder_get().version
    if version != chunk.job.model_version:
        raise ReindexError(f"this worker embeds with {version}, the job with {chunk.job.model_version}")
    ids = Image.objects.filter(id__gte=chunk.first_id, id__lte=chunk.last_id).values_list("id", flat=True)
    report = embeddings_update(image_ids=ids, chunk=settings.SEARCH_EMBED_BATCH_SIZE)
    with transaction.atomic():
        ReindexChunk.objects.filter(pk=chunk.pk).update(
            status=ReindexChunk.Status.DONE, embedded_count=F("embedded_count") + report.embedded,
            unreadable=report.failed, error="", finished_at=timezone.now(),
        )  # fmt: skip
        _reindex_job_advance(chunk.job_id)
    chunk.refresh_from_db()
    return chunk


def reindex_chunk_retrying(*, chunk_id: int, error: str) -> None:
    """An attempt failed and the task will try again: say so on the row."""
    ReindexChunk.objects.filter(pk=chunk_id).exclude(status=ReindexChunk.Status.DONE).update(
        status=ReindexChunk.Status.PENDING, error=error
    )


def reindex_chunk_fail(*, chunk_id: int, error: str) -> None:
    """The chunk failed after its retries: mark it, and the job once no chunk is left to run."""
    with transaction.atomic():
        updated = ReindexChunk.objects.filter(pk=chunk_id).exclude(status=ReindexChunk.Status.DONE).update(
            status=ReindexChunk.Status.FAILED, error=error, finished_at=timezone.now()
        )
        chunk = ReindexChunk.objects.filter(pk=chunk_id).first()
        if updated and chunk is not None:
            _reindex_job_advance(chunk.job_id)


def _reindex_job_advance(job_id: int) -> None:
    """Inside a transaction: when no chunk is pending or running, the job moves on, once: to the
    merge when every chunk is done, else to failed, naming the failed chunks."""
    from search.tasks import reindex_merge_task

    job = ReindexJob.objects.select_for_update().get(pk=job_id)  # one advance at a time per job
    if job.status != ReindexJob.Status.RUNNING:
        return
    left = job.chunks.filter(status__in=[ReindexChunk.Status.PENDING, ReindexChunk.Status.RUNNING])
    if left.exists():
        return
    failed = list(job.chunks.filter(status=ReindexChunk.Status.FAILED).order_by("number"))
    if failed:
        job.status, job.finished_at = ReindexJob.Status.FAILED, timezone.now()
        job.error = "; ".join(f"chunk {c.number} (image ids {c.first_id}-{c.last_id}) failed after {c.attempts} attempts: {c.error}" for c in failed)
        job.save(update_fields=["status", "error", "finished_at"])
        return
    job.status = ReindexJob.Status.MERGING
    job.save(update_fields=["status"])
    reindex_merge_task.delay_on_commit(job.pk)


def reindex_job_merge(*, job_id: int) -> ReindexJob:
    """Build and publish the index from the vectors every chunk stored (one IndexBuild)."""
    job = ReindexJob.objects.filter(pk=job_id).first()
    if job is None:
        raise ReindexError(f"no reindex job {job_id}")
    if job.status != ReindexJob.Status.MERGING:
        return job  # merged already, or failed: nothing to do
    try:
        build = index_rebuild(full=job.full)
    except IndexBuildBusy:
        raise  # the task tries again later
    except Exception as exc:
        ReindexJob.objects.filter(pk=job.pk).update(
            status=ReindexJob.Status.FAILED, error=f"merge: {type(exc).__name__}: {exc}", finished_at=timezone.now()
        )
        raise
    ReindexJob.objects.filter(pk=job.pk).update(status=ReindexJob.Status.SUCCEEDED, build=build, finished_at=timezone.now())
    job.refresh_from_db()
    return job


def reindex_job_resume(*, job_id: int) -> ReindexJob:
    """After a crash (a worker killed, the broker lost its messages) or failed chunks: queue
    again every chunk that is not done, or the merge. A chunk still running elsewhere may then
    run twice; that is harmless (it embeds only what is missing) and the merge runs once."""
    from search.tasks import reindex_chunk_task, reindex_merge_task

    with transaction.atomic():
        job = ReindexJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            raise ReindexError(f"no reindex job {job_id}")
        if job.status == ReindexJob.Status.SUCCEEDED:
            return job
        if job.model_version != encoder_get().version:
            raise ReindexError(f"job {job.pk} embeds with {job.model_version}, the configured model is another: start a new job")
        unfinished = list(job.chunks.exclude(status=ReindexChunk.Status.DONE).values_list("pk", flat=True))
        job.chunks.filter(pk__in=unfinished).update(status=ReindexChunk.Status.PENDING, attempts=0)
        job.status = ReindexJob.Status.RUNNING if unfinished else ReindexJob.Status.MERGING
        job.error, job.finished_at = "", None
        job.save(update_fields=["status", "error", "finished_at"])
        for chunk_id in unfinished:
            reindex_chunk_task.delay_on_commit(chunk_id)
        if not unfinished:
            reindex_merge_task.delay_on_commit(job.pk)
    return job


@dataclass(frozen=True)
class ReindexProgress:
    job: ReindexJob
    chunks: dict[str, int]  # status -> how many chunks
    embedded: int
    failed_chunks: list[ReindexChunk]

    @property
    def done(self) -> int:
        return self.chunks.get(ReindexChunk.Status.DONE, 0)

    @property
    def total(self) -> int:
        return sum(self.chunks.values())

    def line(self) -> str:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(self.chunks.items()))
        text = (f"reindex job {self.job.pk}: {self.job.status}; chunks {self.done}/{self.total} done ({counts or 'none'}); "
                f"{self.embedded}/{self.job.image_count} images embedded")  # fmt: skip
        if self.job.build_id:
            text += f"; index version {self.job.build_id}"
        return text + (f"; {self.job.error}" if self.job.error else "")


def reindex_progress(*, job_id: int) -> ReindexProgress:
    job = ReindexJob.objects.filter(pk=job_id).first()
    if job is None:
        raise ReindexError(f"no reindex job {job_id}")
    counts = dict(job.chunks.order_by().values_list("status").annotate(n=Count("id")))
    embedded = job.chunks.aggregate(n=Sum("embedded_count"))["n"] or 0
    failed = list(job.chunks.filter(status=ReindexChunk.Status.FAILED).order_by("number"))
    return ReindexProgress(job=job, chunks=counts, embedded=embedded, failed_chunks=failed)
