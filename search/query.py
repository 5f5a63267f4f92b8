"""The query service: text, photo and "more like this" searches over the live index.

Views, the API and commands call `search_text`, `search_image` (uploaded bytes, never stored)
and `search_similar`. Deleted and non-public images never come back: every hit is checked
against the database, and filtered queries pass the allowed ids into FAISS. What the words of a
query mean is decided in search/interpret.py (pure Python).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from functools import cache

import faiss
import numpy as np
from django.conf import settings
from django.db.models import Q

from atlas.models import Condition, Image
from atlas.services.ingestion import IngestionError, decode_upload
from atlas.skin import FITZPATRICK_TONE_WORDS, FITZPATRICK_TYPES
from search import distribution
from search.errors import SearchError, SearchUnavailable
from search.index import IndexSpec, IndexStore, IndexUnavailable, LiveIndex, VectorIndex
from search.indexing import encoder_get, open_pixels, stored_vectors
from search.interpret import Interpretation, Vocabulary, interpret
from search.models import ImageEmbedding

logger = logging.getLogger(__name__)


# --- reading the live index -----------------------------------------------------------------


@cache
def _live_index(directory: str) -> LiveIndex:
    # A process that answers queries searches one vector at a time: FAISS's OpenMP threads only
    # spin-wait against each other (and against torch) on a busy machine (docs/benchmarks.md).
    if settings.SEARCH_FAISS_THREADS > 0:
        faiss.omp_set_num_threads(settings.SEARCH_FAISS_THREADS)
    return LiveIndex(IndexStore(directory))


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
        ids, vectors = stored_vectors(model_version)
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
    interpretation: Interpretation
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
    return _answer(vector, encoder.version, filters, k, Interpretation(), diversify=diversify, started=started)


def search_similar(*, image: Image, filters: SearchFilters | None = None, k: int = 20, diversify: bool = False) -> SearchResult:
    """More like this catalogue image (itself excluded)."""
    started = time.monotonic()
    filters = _check_filters(filters or SearchFilters(), k)
    encoder = encoder_get()
    stored = ImageEmbedding.objects.filter(image=image, model_version=encoder.version).first()
    vector = stored.array if stored else encoder.embed_images([open_pixels(image)])[0]
    return _answer(
        vector, encoder.version, filters, k, Interpretation(), diversify=diversify, exclude={image.pk}, started=started
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
    known = Condition.objects.public().filter(slug__in=filters.conditions).values_list("slug", flat=True)
    unknown = set(filters.conditions) - set(known)
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
    interpretation: Interpretation,
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


# --- what the words mean ----------------------------------------------------------------------


@cache
def _vocabulary(stamp: tuple) -> Vocabulary:
    return Vocabulary.build(((slug, name, synonyms) for _, slug, name, synonyms in stamp), FITZPATRICK_TONE_WORDS)


def vocabulary() -> Vocabulary:
    """Condition names and synonyms from the Condition rows (edited in the admin: the cache key changes with them)."""
    rows = Condition.objects.public().order_by("id").values_list("id", "slug", "name", "synonyms")
    return _vocabulary(tuple((i, slug, name, tuple(synonyms)) for i, slug, name, synonyms in rows))


def query_interpret(text: str) -> Interpretation:
    """Conditions, skin types and corrections named in free text (search/interpret.py)."""
    return interpret(text, vocabulary())


def reset_caches() -> None:
    """Forget loaded indexes and fallbacks (tests; settings changes)."""
    _live_index.cache_clear()
    distribution.reset()
    with _fallback_lock:
        _fallback.clear()
