"""Search services: embeddings, index builds and the query service (the Django side).

Views, the API, commands and tasks call these functions; the ML lives in encoder.py and
index.py. Queries: `search_text`, `search_image` (uploaded bytes, never stored) and
`search_similar` ("more like this"). Deleted and non-public images never come back: every
hit is checked against the database, and filtered queries pass the allowed ids into FAISS.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache

import faiss
import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import Q
from django.utils import timezone
from PIL import Image as PILImage

from atlas.models import Condition, Image
from atlas.services.ingestion import IngestionError, decode_upload, stored_image_pixels
from atlas.skin import FITZPATRICK_TONE_WORDS, FITZPATRICK_TYPES, ROMAN
from search import distribution
from search.encoder import Encoder, EncoderUnavailable, load_encoder
from search.index import IndexSpec, IndexStore, IndexUnavailable, LiveIndex, VectorIndex, choose_spec
from search.models import ImageEmbedding, IndexBuild

logger = logging.getLogger(__name__)


class SearchError(ValueError):
    """Bad input to a search (empty or over-long query, bad filter, unusable upload)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class SearchUnavailable(RuntimeError):
    """Search cannot answer now (no model, nothing indexed): a 503, not the caller's fault."""


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


def _open_pixels(image: Image) -> PILImage.Image:
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
    hidden = ImageEmbedding.objects.filter(image__is_public=False)
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
                pixels.append(_open_pixels(image))
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


def _stored_vectors(model_version: str, image_ids: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) of public images for one model version."""
    rows = ImageEmbedding.objects.filter(model_version=model_version, image__is_public=True)
    if image_ids is not None:
        rows = rows.filter(image_id__in=image_ids)
    pairs = list(rows.order_by("image_id").values_list("image_id", "vector"))
    if not pairs:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    ids = np.fromiter((p[0] for p in pairs), dtype=np.int64, count=len(pairs))
    vectors = np.stack([np.frombuffer(bytes(p[1]), dtype="<f4") for p in pairs])
    return ids, vectors


# --- index builds ---------------------------------------------------------------------------


def index_store() -> IndexStore:
    return IndexStore(settings.SEARCH_INDEX_DIR)


def _spec_for(n: int) -> IndexSpec:
    return choose_spec(n, flat_max=settings.SEARCH_INDEX_FLAT_MAX, nprobe=settings.SEARCH_INDEX_NPROBE)


def index_rebuild(*, full: bool = False, progress: bool = False) -> IndexBuild:
    """Embed what is new, then publish a new index version (atomic swap); job state on the row.

    Incremental (default): load the live index, remove ids whose images are gone or hidden,
    add the new vectors. Full (or when the model, or the index layout for this size, changed,
    or the live index is unreadable): rebuild from all stored vectors.
    """
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
        build.path = str(index_store().publish(index, version=build.pk, model_version=report.model_version))
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
        ImageEmbedding.objects.filter(model_version=model_version, image__is_public=True).values_list("image_id", flat=True)
    )
    live = None if full else _live_for_update(model_version, len(wanted))
    if live is None:
        ids, vectors = _stored_vectors(model_version)
        if len(ids) == 0:
            return VectorIndex.empty(1, IndexSpec("flat")), True, 0
        return VectorIndex.build(ids, vectors, spec=_spec_for(len(ids))), True, 0
    present = set(live.ids().tolist())
    dropped = live.remove(np.fromiter(present - wanted, dtype=np.int64))
    new_ids = sorted(wanted - present)
    for start in range(0, len(new_ids), 5000):
        ids, vectors = _stored_vectors(model_version, new_ids[start : start + 5000])
        live.add(ids, vectors)
    return live, False, dropped


def _live_for_update(model_version: str, size: int) -> VectorIndex | None:
    if settings.SEARCH_INDEX_PUBLISH:  # a fresh worker host starts from the newest published version
        distribution.index_fetch_quietly(store=index_store())
    try:
        index, pointer = index_store().load_current()
    except IndexUnavailable as exc:
        logger.warning("rebuilding the index from scratch: %s", exc)
        return None
    if pointer.get("model_version") != model_version:
        logger.info("model changed (%s -> %s): full rebuild", pointer.get("model_version"), model_version)
        return None
    if index.spec.kind != _spec_for(size).kind:
        logger.info("collection size %d calls for a %s index: full rebuild", size, _spec_for(size).kind)
        return None
    return index


# --- reading the live index -----------------------------------------------------------------


@cache
def _live_index(directory: str) -> LiveIndex:
    # A process that answers queries searches one vector at a time: FAISS's OpenMP threads only
    # spin-wait against each other (and against torch) on a busy machine (docs/benchmarks.md).
    if settings.SEARCH_FAISS_THREADS > 0:
        faiss.omp_set_num_threads(settings.SEARCH_FAISS_THREADS)
    return LiveIndex(IndexStore(directory))


@contextmanager
def _faiss_threads(count: int):
    """All cores for building an index (k-means, adding), then back to the query setting."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


_fallback_lock = threading.Lock()
_fallback: dict[str, tuple[float, VectorIndex]] = {}
FALLBACK_TTL_SECONDS = 60.0


def _index_for(model_version: str) -> tuple[VectorIndex, str, str]:
    """(index, index version, fallback reason or ""): the published index, else exact search over stored vectors."""
    try:
        distribution.index_sync(store=_live_index(str(settings.SEARCH_INDEX_DIR)).store)
        index, pointer = _live_index(str(settings.SEARCH_INDEX_DIR)).get()
        if pointer.get("model_version") == model_version:
            return index, str(pointer["version"]), ""
        reason = f"the published index was built with {pointer.get('model_version')}, the encoder is {model_version}"
    except IndexUnavailable as exc:
        reason = str(exc)
    logger.warning("search falls back to exact search over stored vectors: %s", reason)
    return _exact_index(model_version), "exact-fallback", reason


def _exact_index(model_version: str) -> VectorIndex:
    with _fallback_lock:
        cached = _fallback.get(model_version)
        if cached and time.monotonic() - cached[0] < FALLBACK_TTL_SECONDS:
            return cached[1]
        ids, vectors = _stored_vectors(model_version)
        if len(ids) == 0:
            raise SearchUnavailable("search is not ready: no index has been built and no image is embedded yet (run `manage.py reindex`)")
        index = VectorIndex.build(ids, vectors, spec=IndexSpec("flat"))
        _fallback[model_version] = (time.monotonic(), index)
        return index


# --- queries --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchFilters:
    conditions: tuple[str, ...] = ()  # condition slugs (any of)
    skin_types: tuple[int, ...] = ()  # Fitzpatrick types (any of)
    origin: str = ""  # "real" | "synthetic" | "" (both)
    source: str = ""  # source slug
    licence: str = ""  # exact licence identifier, e.g. CC-BY-4.0

    def is_empty(self) -> bool:
        return not (self.conditions or self.skin_types or self.origin or self.source or self.licence)

    def q(self) -> Q:
        q = Q()
        if self.conditions:
            q &= Q(condition__slug__in=self.conditions)
        if self.skin_types:
            q &= Q(fitzpatrick_type__in=self.skin_types)
        if self.origin:
            q &= Q(origin=self.origin)
        if self.source:
            q &= Q(source__slug=self.source)
        if self.licence:
            q &= Q(licence=self.licence)
        return q


@dataclass(frozen=True)
class QueryInterpretation:
    conditions: tuple[str, ...] = ()  # slugs named in the text (name or synonym)
    skin_types: tuple[int, ...] = ()  # skin types named in the text
    terms: tuple[str, ...] = ()  # the words that matched, for display


@dataclass(frozen=True)
class SearchHit:
    image: Image
    score: float  # cosine similarity between the query and the image
    boosted: bool = False  # ranked first because it matches the skin tone named in the query

    def as_dict(self) -> dict:
        image = self.image
        return {
            "id": image.pk,
            "public_id": str(image.public_id),
            "score": round(self.score, 4),
            "condition": image.condition.slug,
            "fitzpatrick_type": image.fitzpatrick_type,
            "origin": image.origin,
            "source": image.source.slug,
            "licence": image.licence,
            "thumbnail": image.thumbnail.url if image.thumbnail else "",
            "boosted": self.boosted,
        }


@dataclass
class SearchResult:
    hits: list[SearchHit]
    interpretation: QueryInterpretation
    filters: SearchFilters
    model_version: str
    index_version: str
    fallback: str = ""  # why exact search over stored vectors answered instead of the index
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {
            "hits": [hit.as_dict() for hit in self.hits],
            "interpreted": {
                "conditions": list(self.interpretation.conditions),
                "skin_types": list(self.interpretation.skin_types),
                "terms": list(self.interpretation.terms),
            },
            "filters": {
                "conditions": list(self.filters.conditions),
                "skin_types": list(self.filters.skin_types),
                "origin": self.filters.origin,
                "source": self.filters.source,
                "licence": self.filters.licence,
            },
            "model_version": self.model_version,
            "index_version": self.index_version,
            "fallback": self.fallback,
            "seconds": round(self.seconds, 4),
        }


def search_text(*, query: str, filters: SearchFilters | None = None, k: int = 20, diversify: bool = False) -> SearchResult:
    """Free text. Condition names/synonyms in it filter; skin-tone words rank matching skin types first."""
    started = time.monotonic()
    text = _check_query(query)
    filters = _check_filters(filters or SearchFilters(), k)
    interpretation = query_interpret(text)
    if interpretation.conditions and not filters.conditions:
        filters = _replace(filters, conditions=interpretation.conditions)
    encoder = encoder_get()
    vector = encoder.embed_texts([text])[0]
    boost = interpretation.skin_types if not filters.skin_types else ()
    return _answer(vector, encoder.version, filters, k, interpretation, boost=boost, diversify=diversify, started=started)


def search_image(*, data: bytes, filters: SearchFilters | None = None, k: int = 20, diversify: bool = False) -> SearchResult:
    """Images like an uploaded photo; the upload is decoded in memory and never stored."""
    started = time.monotonic()
    filters = _check_filters(filters or SearchFilters(), k)
    try:
        pixels = decode_upload(data)
    except IngestionError as exc:
        raise SearchError(exc.code, exc.message) from None
    encoder = encoder_get()
    vector = encoder.embed_images([pixels])[0]
    return _answer(vector, encoder.version, filters, k, QueryInterpretation(), diversify=diversify, started=started)


def search_similar(*, image: Image, filters: SearchFilters | None = None, k: int = 20, diversify: bool = False) -> SearchResult:
    """More like this catalogue image (itself excluded)."""
    started = time.monotonic()
    filters = _check_filters(filters or SearchFilters(), k)
    encoder = encoder_get()
    stored = ImageEmbedding.objects.filter(image=image, model_version=encoder.version).first()
    vector = stored.array if stored else encoder.embed_images([_open_pixels(image)])[0]
    return _answer(
        vector, encoder.version, filters, k, QueryInterpretation(), diversify=diversify, exclude={image.pk}, started=started
    )


def _check_query(query: str) -> str:
    text = " ".join((query or "").split())
    if not text:
        raise SearchError("empty_query", "type something to search for")
    if len(text) > settings.SEARCH_MAX_QUERY_CHARS:
        raise SearchError("query_too_long", f"the query is {len(text):,} characters; the limit is {settings.SEARCH_MAX_QUERY_CHARS}")
    return text


def _check_filters(filters: SearchFilters, k: int) -> SearchFilters:
    if not isinstance(k, int) or not 1 <= k <= settings.SEARCH_MAX_K:
        raise SearchError("bad_k", f"k must be between 1 and {settings.SEARCH_MAX_K}")
    bad_types = [t for t in filters.skin_types if t not in FITZPATRICK_TYPES]
    if bad_types:
        raise SearchError("bad_skin_type", f"Fitzpatrick types are 1-6, not {bad_types}")
    if filters.origin and filters.origin not in Image.Origin.values:
        raise SearchError("bad_origin", f"origin must be one of {Image.Origin.values}")
    unknown = set(filters.conditions) - set(Condition.objects.filter(slug__in=filters.conditions).values_list("slug", flat=True))
    if unknown:
        raise SearchError("unknown_condition", f"unknown condition {', '.join(sorted(unknown))}")
    return filters


def _replace(filters: SearchFilters, **changes) -> SearchFilters:
    from dataclasses import replace

    return replace(filters, **changes)


def _answer(
    vector: np.ndarray,
    model_version: str,
    filters: SearchFilters,
    k: int,
    interpretation: QueryInterpretation,
    *,
    boost: tuple[int, ...] = (),
    diversify: bool = False,
    exclude: set[int] | None = None,
    started: float,
) -> SearchResult:
    index, index_version, fallback = _index_for(model_version)
    exclude = exclude or set()
    if diversify:
        hits = _diversified(index, vector, filters, k, exclude)
    elif boost:
        first = _hits(index, vector, _replace(filters, skin_types=boost), k, exclude, boosted=True)
        seen = exclude | {hit.image.pk for hit in first}
        hits = first + _hits(index, vector, filters, k - len(first), seen) if len(first) < k else first
    else:
        hits = _hits(index, vector, filters, k, exclude)
    return SearchResult(
        hits=hits,
        interpretation=interpretation,
        filters=filters,
        model_version=model_version,
        index_version=index_version,
        fallback=fallback,
        seconds=time.monotonic() - started,
    )


def _hits(index: VectorIndex, vector: np.ndarray, filters: SearchFilters, k: int, exclude: set[int], *, boosted: bool = False) -> list[SearchHit]:
    """Top-k public images passing the filters. Every id is checked against the database."""
    if k <= 0:
        return []
    visible = Image.objects.public().filter(filters.q())
    if not filters.is_empty():
        allowed = np.fromiter(visible.values_list("id", flat=True), dtype=np.int64)
        allowed = allowed[~np.isin(allowed, list(exclude))] if exclude else allowed
        ranked = index.search(vector, k, allowed_ids=allowed)
        return _rows(ranked, visible, boosted)[:k]
    # No filter: over-fetch, then drop ids the database no longer shows (deleted or hidden
    # since the last build), fetching more until k survive or the index is exhausted.
    fetch = k + len(exclude) + 8
    while True:
        ranked = [(i, s) for i, s in index.search(vector, fetch) if i not in exclude]
        hits = _rows(ranked, visible, boosted)
        if len(hits) >= k or fetch >= len(index):
            return hits[:k]
        fetch = min(len(index), fetch * 4)


def _rows(ranked: list[tuple[int, float]], visible, boosted: bool) -> list[SearchHit]:
    rows = visible.select_related("condition", "source").in_bulk([i for i, _ in ranked])
    return [SearchHit(image=rows[i], score=s, boosted=boosted) for i, s in ranked if i in rows]


def _diversified(index: VectorIndex, vector: np.ndarray, filters: SearchFilters, k: int, exclude: set[int]) -> list[SearchHit]:
    """The condition on every skin type: round-robin over Fitzpatrick types, each type's best first."""
    types = filters.skin_types or FITZPATRICK_TYPES
    # Each type is fetched k deep so sparse types leave room for the others.
    groups = [_hits(index, vector, _replace(filters, skin_types=(t,)), k, exclude) for t in types]
    groups = sorted((g for g in groups if g), key=lambda g: -g[0].score)
    hits: list[SearchHit] = []
    for rank in range(k):
        for group in groups:
            if rank < len(group) and len(hits) < k:
                hits.append(group[rank])
    return hits


# --- query interpretation (hybrid) ----------------------------------------------------------

# Group words people use for a range of types; the per-type words come from atlas/skin.py.
_TONE_GROUPS: dict[str, tuple[int, ...]] = {
    "dark": (5, 6),
    "darker": (5, 6),
    "brown": (4, 5),
    "medium": (3, 4),
    "light": (1, 2),
    "lighter": (1, 2),
    "fair": (1, 2),
    "white": (1, 2),
    "black": (6,),
}
_NUMERAL = r"(vi|iv|v|iii|ii|i|[1-6])"
_TYPE_PATTERN = re.compile(
    rf"\b(?:fitzpatrick(?:\s+skin)?(?:\s+types?)?|skin\s+types?|phototypes?|types?|fst)\s*{_NUMERAL}"
    rf"(?:\s*(?:-|–|to|or|and|/)\s*(?:type\s*)?{_NUMERAL})?\b"
)
_OF_COLOUR = re.compile(r"\bskin\s+of\s+colou?r\b")


def _tone_words() -> dict[str, tuple[int, ...]]:
    words = {word: (t,) for t, phrases in FITZPATRICK_TONE_WORDS.items() for word in phrases}
    return {**words, **_TONE_GROUPS}


_TONE_PATTERN = re.compile(
    r"\b(" + "|".join(re.escape(w) for w in sorted(_tone_words(), key=len, reverse=True)) + r")[\s-]+(?:skin(?:ned)?|complexions?|tones?)\b"
)


def _numeral(token: str) -> int:
    return int(token) if token.isdigit() else {v.lower(): n for n, v in ROMAN.items()}[token]


@cache
def _condition_matcher(stamp: tuple) -> tuple[re.Pattern, dict[str, str]]:
    """One alternation of every name and synonym, longest first, so at each position the
    longest phrase wins ("tinea versicolor" over "tinea")."""
    slugs: dict[str, str] = {}
    for _, slug, names in stamp:
        for name in names:
            if name.strip() and slug != "other":  # "other" is too common a word to mean the condition
                slugs.setdefault(name.strip().lower(), slug)
    alternatives = "|".join(re.escape(term) for term in sorted(slugs, key=len, reverse=True))
    return re.compile(r"(?<![\w])(" + alternatives + r")(?![\w])"), slugs


def _condition_terms() -> tuple[re.Pattern, dict[str, str]]:
    # Conditions and synonyms are edited in the admin: the cache key changes with them.
    rows = Condition.objects.order_by("id").values_list("id", "slug", "name", "synonyms")
    return _condition_matcher(tuple((i, slug, (name, *synonyms)) for i, slug, name, synonyms in rows))


def query_interpret(text: str) -> QueryInterpretation:
    """Condition names/synonyms and skin-tone phrases in free text (longest phrase first)."""
    remaining = " " + text.lower() + " "
    conditions: list[str] = []
    terms: list[str] = []
    pattern, slugs = _condition_terms()
    for match in pattern.finditer(remaining):
        terms.append(match.group(1))
        if slugs[match.group(1)] not in conditions:
            conditions.append(slugs[match.group(1)])
    remaining = pattern.sub(" ", remaining)  # "dark marks" (a condition) is not a skin tone
    types: set[int] = set()
    for match in _TYPE_PATTERN.finditer(remaining):
        first = _numeral(match.group(1))
        last = _numeral(match.group(2)) if match.group(2) else first
        types.update(range(min(first, last), max(first, last) + 1))
        terms.append(match.group(0).strip())
    for match in _TONE_PATTERN.finditer(remaining):
        types.update(_tone_words()[match.group(1)])
        terms.append(match.group(0).strip())
    if _OF_COLOUR.search(remaining):
        types.update((4, 5, 6))
        terms.append("skin of colour")
    return QueryInterpretation(conditions=tuple(conditions), skin_types=tuple(sorted(types)), terms=tuple(terms))


def reset_caches() -> None:
    """Forget loaded indexes and fallbacks (tests; settings changes)."""
    _live_index.cache_clear()
    distribution.reset()
    with _fallback_lock:
        _fallback.clear()


# --- training the offline model -------------------------------------------------------------


def clip_samples() -> list:
    """(image, caption metadata) for every public image: the training data of train_clip."""
    from search.clip_train import CaptionMeta, Sample

    samples = []
    for image in Image.objects.public().select_related("condition").order_by("id"):
        meta = CaptionMeta(
            condition=image.condition.name,
            synonyms=tuple(image.condition.synonyms),
            fitzpatrick_type=image.fitzpatrick_type,
            body_site=image.body_site,
            origin=image.origin,
        )
        samples.append(Sample(key=image.sha256, meta=meta, load=lambda image=image: _open_pixels(image)))
    return samples


def clip_model_train(*, preset: str = "fast", epochs: int | None = None, out: str = "", command: str = ""):
    """Train the small open_clip model on the catalogue and save it where settings load it from."""
    from pathlib import Path

    from search.clip_train import preset as make_config
    from search.clip_train import train

    config = make_config(preset, epochs=epochs, model_name=settings.SEARCH_CLIP_MODEL)
    samples = clip_samples()
    if len(samples) < 2:
        raise SearchUnavailable(f"the catalogue has {len(samples)} public images; train_clip needs some (run seed_demo)")
    return train(samples, config=config, out_path=Path(out or settings.SEARCH_CLIP_PRETRAINED), command=command)


def after_demo_seed(summary) -> str:
    """An ATLAS_AFTER_DEMO_SEED hook: embed and index new demo images when a model exists."""
    try:
        build = index_rebuild()
    except SearchUnavailable as exc:
        return f"search: not indexed yet ({exc})"
    return f"search: index version {build.pk} with {build.vector_count} vectors (embedded {build.embedded_count})"


# --- the demo model shipped in the repository ---------------------------------------------

DEMO_MODEL_DIR = settings.BASE_DIR / "search" / "demo_model"


def demo_model_ensure(*, train_if_stale: bool = True) -> str:
    """Make sure the configured CLIP checkpoint exists, without training when we can avoid it.

    The repository ships the fast-preset model that `train_clip` made on the default demo
    atlas (search/demo_model/, with the command and data fingerprint beside it). When the
    catalogue's fingerprint matches, that file is copied to SEARCH_CLIP_PRETRAINED; when it
    does not (other data, other seed), the model is trained here, which takes minutes.
    """
    import json
    import shutil
    from pathlib import Path

    from search.clip_train import data_fingerprint

    target = Path(settings.SEARCH_CLIP_PRETRAINED)
    if target.exists():
        return f"search model: {target} present"
    shipped = DEMO_MODEL_DIR / f"{settings.SEARCH_CLIP_MODEL}.pt"
    meta_path = shipped.with_suffix(".json")
    catalogue = data_fingerprint(clip_samples())
    if shipped.exists() and meta_path.exists() and json.loads(meta_path.read_text())["data_fingerprint"] == catalogue:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shipped, target)
        shutil.copyfile(meta_path, target.with_suffix(".json"))
        return f"search model: copied the shipped demo model (data fingerprint {catalogue} matches)"
    if not train_if_stale:
        return f"search model: none for this catalogue (fingerprint {catalogue}); run train_clip"
    logger.warning("no shipped search model fits this catalogue (fingerprint %s): training one (minutes)", catalogue)
    clip_model_train(preset="fast", command="python manage.py train_clip --preset fast")
    return "search model: trained with train_clip --preset fast"
