"""The query service: text, photo and "more like this" searches over the live index.

Views, the API and commands call `search_text`, `search_image` (uploaded bytes, never stored)
and `search_similar`. Deleted and non-public images never come back: every hit is checked
against the database, and filtered queries pass the allowed ids into FAISS. What the words of a
query mean is decided in search/interpret.py (pure Python).
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cache

import faiss
import numpy as np
from django.conf import settings
from django.db import connection
from django.db.models.expressions import RawSQL

from atlas.filters import FilterError, ImageFilters, filters_parse, images_filtered
from atlas.models import Condition, Image
from atlas.selectors import RegionBoxes
from atlas.services.ingestion import IngestionError, decode_upload
from atlas.skin import FITZPATRICK_TONE_WORDS, FITZPATRICK_TYPES
from search import distribution
from search.errors import SearchError, SearchUnavailable
from search.index import IndexSpec, IndexStore, IndexUnavailable, LiveIndex, VectorIndex
from search.indexing import open_pixels, query_encoder_get, stored_vectors
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

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\ufeff]")


@dataclass(frozen=True)
class SearchHit:
    image: Image
    score: float  # cosine similarity between the query and the image
    boosted: bool = False  # ranked first: it shows a condition or skin type the query names
    nearest_type: bool = False  # shown for a skin type near the one asked for, which has no images of the condition

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
            "nearest_type": self.nearest_type,
        }


@dataclass(frozen=True)
class SkinTypeGap:
    """The skin types asked for have no images of the conditions asked for; `nearest` do."""

    conditions: tuple[str, ...]
    requested: tuple[int, ...]
    nearest: tuple[int, ...]  # the closest types that have images, nearest first

    def as_dict(self) -> dict:
        return {"conditions": list(self.conditions), "requested": list(self.requested), "nearest": list(self.nearest)}


@dataclass
class SearchResult:
    hits: list[SearchHit]  # the answer (empty when nothing matched confidently)
    interpretation: Interpretation
    filters: ImageFilters
    model_version: str
    index_version: str
    fallback: str = ""  # why exact search over stored vectors answered instead of the index
    seconds: float = 0.0
    confident: bool = True  # False: the best match is below the relevance floor
    floor: float | None = None  # the relevance floor this kind of query is held to (None: none)
    closest: list[SearchHit] = field(default_factory=list)  # below the floor: the closest images, shown apart
    skin_type_gap: SkinTypeGap | None = None
    exclude: tuple[int, ...] = ()  # image ids left out ("more like this" leaves out the image itself)

    def total(self) -> int:
        """How many images this query can rank: the filtered, searchable ones (the same on every page)."""
        return query_total(self.filters, index_version=self.index_version, model_version=self.model_version, exclude=self.exclude)

    def as_dict(self) -> dict:
        meaning = self.interpretation
        return {
            "hits": [hit.as_dict() for hit in self.hits],
            "confident": self.confident,
            "floor": self.floor,
            "closest": [hit.as_dict() for hit in self.closest],
            "skin_type_gap": self.skin_type_gap.as_dict() if self.skin_type_gap else None,
            "interpreted": {
                "conditions": list(meaning.conditions),
                "skin_types": list(meaning.skin_types),
                "terms": list(meaning.terms),
                "suggestion": meaning.suggestion,
                "only_skin_type": meaning.only_skin_type,
            },
            "filters": self.filters.as_dict(),
            "model_version": self.model_version,
            "index_version": self.index_version,
            "fallback": self.fallback,
            "seconds": round(self.seconds, 4),
        }


@dataclass(frozen=True)
class _Boost:
    conditions: tuple[str, ...] = ()  # named in the text, not chosen as a filter
    skin_types: tuple[int, ...] = ()


def search_text(*, query: str, filters: ImageFilters | None = None, k: int = 20, diversify: bool = False) -> SearchResult:
    """Free text. Conditions and skin types named in it rank first (boost); only chosen filters filter."""
    started = time.monotonic()
    text = _check_query(query)
    filters = _check_filters(filters or ImageFilters(), k)
    meaning = query_interpret(text)
    if meaning.only_stop_words:
        raise SearchError("only_stop_words", "the query has only common words (like “the” or “of”): name a condition, describe what you see, or a skin tone")
    encoder = query_encoder_get()
    vector = _text_vector(encoder, meaning.suggestion or text)  # "melanomma" is searched as "melanoma"
    boost = _Boost(
        conditions=meaning.conditions if not filters.conditions else (),
        skin_types=meaning.skin_types if not filters.skin_types else (),
    )
    # Words that name a condition or a skin type are evidence of their own: the floor judges
    # only queries the model alone answers ("a red car").
    floor = None if (meaning.conditions or meaning.skin_types) else (settings.SEARCH_FLOOR_TEXT or None)
    return _answer(vector, encoder.version, filters, k, meaning, boost=boost, diversify=diversify, floor=floor, started=started)


def search_image(*, data: bytes, filters: ImageFilters | None = None, k: int = 20, diversify: bool = False) -> SearchResult:
    """Images like an uploaded photo; the upload is decoded in memory and never stored."""
    started = time.monotonic()
    filters = _check_filters(filters or ImageFilters(), k)
    try:
        pixels = decode_upload(data)
    except IngestionError as exc:
        raise SearchError(exc.code, exc.message) from None
    encoder = query_encoder_get()
    vector = encoder.embed_images([pixels])[0]
    floor = settings.SEARCH_FLOOR_IMAGE or None
    return _answer(vector, encoder.version, filters, k, Interpretation(), diversify=diversify, floor=floor, started=started)


def search_similar(*, image: Image, filters: ImageFilters | None = None, k: int = 20, diversify: bool = False) -> SearchResult:
    """More like this catalogue image (itself excluded). No floor: the image is the atlas's own."""
    started = time.monotonic()
    filters = _check_filters(filters or ImageFilters(), k)
    encoder = query_encoder_get()
    stored = ImageEmbedding.objects.filter(image=image, model_version=encoder.version).first()
    vector = stored.array if stored else encoder.embed_images([open_pixels(image)])[0]
    return _answer(vector, encoder.version, filters, k, Interpretation(), diversify=diversify, exclude={image.pk}, started=started)


# Query texts repeat (condition names, a class searching the same words): their vectors are
# kept per process, keyed by model version, so a repeated query skips the text tower.
TEXT_CACHE_SIZE = 2048
_text_lock = threading.Lock()
_text_cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()


def _text_vector(encoder, text: str) -> np.ndarray:
    key = (encoder.version, text)
    with _text_lock:
        vector = _text_cache.get(key)
        if vector is not None:
            _text_cache.move_to_end(key)
            return vector.copy()
    vector = np.asarray(encoder.embed_texts([text])[0], dtype=np.float32)
    with _text_lock:
        _text_cache[key] = vector.copy()
        while len(_text_cache) > TEXT_CACHE_SIZE:
            _text_cache.popitem(last=False)
    return vector


def _check_query(query: str) -> str:
    if _CONTROL.search(query or ""):
        raise SearchError("control_characters", "the query contains control characters: type plain text")
    text = " ".join((query or "").split())
    if not text:
        raise SearchError("empty_query", "type something to search for")
    if len(text) > settings.SEARCH_MAX_QUERY_CHARS:
        raise SearchError("query_too_long", f"the query is {len(text):,} characters; the limit is {settings.SEARCH_MAX_QUERY_CHARS}")
    return text


def _check_filters(filters: ImageFilters, k: int) -> ImageFilters:
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= settings.SEARCH_MAX_K:
        raise SearchError("bad_k", f"k must be between 1 and {settings.SEARCH_MAX_K}")
    if filters.is_checked:
        return filters  # the API's parameters were checked when the request was read
    try:
        return filters_parse(filters.as_query())  # the one definition of what a filter accepts
    except FilterError as exc:
        raise SearchError(exc.code, exc.message) from None


def _answer(
    vector: np.ndarray,
    model_version: str,
    filters: ImageFilters,
    k: int,
    meaning: Interpretation,
    *,
    boost: _Boost = _Boost(),
    diversify: bool = False,
    floor: float | None = None,
    exclude: set[int] | None = None,
    started: float,
) -> SearchResult:
    index, index_version, fallback = _index_for(model_version)
    exclude = exclude or set()
    gap = _skin_type_gap(filters, boost)
    if diversify:
        within = filters.narrowed(conditions=boost.conditions) if boost.conditions else filters
        hits = _diversified(index, vector, within, k, exclude)
    elif gap is not None and filters.skin_types and filters.conditions:
        # Both chosen as filters and nothing matches: the nearest skin types, labelled.
        hits = _hits(index, vector, filters.narrowed(skin_types=gap.nearest), k, exclude, nearest_type=True)
    else:
        hits = _tiered(index, vector, filters, k, exclude, boost, gap)
    result = SearchResult(
        hits=hits,
        interpretation=meaning,
        filters=filters,
        model_version=model_version,
        index_version=index_version,
        fallback=fallback,
        floor=floor,
        skin_type_gap=gap,
        exclude=tuple(sorted(exclude)),
    )
    if floor is not None and hits and max(hit.score for hit in hits) < floor:
        result.confident, result.hits, result.closest = False, [], hits
    result.seconds = time.monotonic() - started
    return result


def _tiered(
    index: VectorIndex, vector: np.ndarray, filters: ImageFilters, k: int, exclude: set[int], boost: _Boost, gap: SkinTypeGap | None
) -> list[SearchHit]:
    """Named conditions and skin types first, then everything else the filters allow, each tier by score.

    Tiers: the named condition on the named skin type; the named condition on the nearest types
    (when the named types have none of it) and then on any type; the named skin type; the rest.
    """
    tiers: list[tuple[ImageFilters, dict]] = []
    if boost.conditions and boost.skin_types:
        tiers.append((filters.narrowed(conditions=boost.conditions, skin_types=boost.skin_types), {"boosted": True}))
    if boost.conditions:
        if gap is not None:
            nearest = filters.narrowed(conditions=boost.conditions or filters.conditions, skin_types=gap.nearest)
            tiers.append((nearest, {"boosted": True, "nearest_type": True}))
        tiers.append((filters.narrowed(conditions=boost.conditions), {"boosted": True}))
    elif gap is not None:  # a chosen condition filter, a skin type named in the words
        tiers.append((filters.narrowed(skin_types=gap.nearest), {"boosted": True, "nearest_type": True}))
    if boost.skin_types:
        tiers.append((filters.narrowed(skin_types=boost.skin_types), {"boosted": True}))
    tiers.append((filters, {}))
    hits: list[SearchHit] = []
    seen = set(exclude)
    for tier_filters, labels in tiers:
        if len(hits) >= k:
            break
        found = _hits(index, vector, tier_filters, k - len(hits), seen, **labels)
        hits += found
        seen |= {hit.image.pk for hit in found}
    return hits


def _skin_type_gap(filters: ImageFilters, boost: _Boost) -> SkinTypeGap | None:
    """When the skin types asked for hold no image of the conditions asked for: the nearest types that do."""
    conditions = boost.conditions or filters.conditions
    requested = tuple(t for t in (boost.skin_types or filters.skin_types) if t is not None)
    if not conditions or not requested:
        return None
    of_conditions = images_filtered(filters.narrowed(conditions=conditions, skin_types=()))
    if of_conditions.filter(fitzpatrick_type__in=requested).exists():
        return None  # the common case: one index probe, not every image of the condition
    present = set(
        of_conditions
        .exclude(fitzpatrick_type__isnull=True)
        .order_by()
        .values_list("fitzpatrick_type", flat=True)
        .distinct()
    )
    if not present:
        return None
    distance = {t: min(abs(t - r) for r in requested) for t in present}
    closest = min(distance.values())
    return SkinTypeGap(conditions=conditions, requested=requested, nearest=tuple(sorted(t for t in present if distance[t] == closest)))


# Candidates fetched per result before a filter falls back to passing every allowed id, and
# the most a second round (sized by the first round's pass rate) may fetch.
POSTFILTER_FETCH_PER_HIT = 16
POSTFILTER_MAX_FETCH = 4096


def _hits(
    index: VectorIndex, vector: np.ndarray, filters: ImageFilters, k: int, exclude: set[int], *, boosted: bool = False, nearest_type: bool = False
) -> list[SearchHit]:
    """Top-k public images passing the filters. Every id is checked against the database."""
    if k <= 0:
        return []
    visible = images_filtered(filters)
    labels = {"boosted": boosted, "nearest_type": nearest_type}
    if not filters.is_empty():
        # A wide filter (a condition, a skin type) keeps many of the nearest images: rank
        # without it and keep the allowed ones, one database query over the candidates. When
        # k survive, they are the top k allowed in the index's order. If too few do, a second,
        # wider round is sized from the first's pass rate; only a filter rarer than that puts
        # every allowed id into the index (complete, but at 1 M images fetching 100k ids costs
        # more than the rest of the query).
        fetch = POSTFILTER_FETCH_PER_HIT * k + len(exclude)
        for _ in range(2):
            candidates = [(i, s) for i, s in index.search(vector, fetch) if i not in exclude]
            passing = _passing(visible, [i for i, _ in candidates])
            ranked = [(i, s) for i, s in candidates if i in passing][:k]
            if len(ranked) >= k:
                return _rows(ranked, visible, labels)[:k]
            wider = math.ceil(2 * k * len(candidates) / max(len(passing), 1)) + len(exclude)
            if fetch >= len(index) or not fetch < wider <= POSTFILTER_MAX_FETCH:
                break
            fetch = wider
        allowed = _ids(visible)
        allowed = allowed[~np.isin(allowed, list(exclude))] if exclude else allowed
        ranked = index.search(vector, k, allowed_ids=allowed)
        return _rows(ranked, visible, labels)[:k]
    # No filter: over-fetch, then drop ids the database no longer shows (deleted or hidden
    # since the last build), fetching more until k survive or the index is exhausted.
    fetch = k + len(exclude) + 8
    while True:
        ranked = [(i, s) for i, s in index.search(vector, fetch) if i not in exclude]
        hits = _rows(ranked, visible, labels)
        if len(hits) >= k or fetch >= len(index):
            return hits[:k]
        fetch = min(len(index), fetch * 4)


def _passing(images, ids: list[int]) -> set[int]:
    """Which of `ids` are among `images`."""
    if connection.vendor == "postgresql":
        # One array parameter: an IN list of thousands of placeholders costs more CPU to
        # build and bind than the query takes to run.
        images = images.filter(id__in=RawSQL("SELECT unnest(%s::bigint[])", [ids]))
    else:
        images = images.filter(id__in=ids)
    return set(images.order_by().values_list("id", flat=True))


def _ids(images) -> np.ndarray:
    """The ids of `images`, unordered (the model's default order would sort every one of them)."""
    ids = images.order_by().values_list("id", flat=True)
    if connection.vendor != "postgresql" or ids.query.is_empty():
        return np.fromiter(ids, dtype=np.int64)
    # One bytea of big-endian int64s instead of a Python object per row: 100k ids cost
    # about half the time (docs/benchmarks.md, "Search at 1 M: the database share").
    sql, params = ids.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT string_agg(int8send(q.id), '') FROM ({sql}) q", params)
        packed = cursor.fetchone()[0]
    return np.frombuffer(packed or b"", dtype=">i8").astype(np.int64)


def _rows(ranked: list[tuple[int, float]], visible, labels: dict) -> list[SearchHit]:
    # The hits' boxes come with their rows (atlas.selectors.RegionBoxes): no query for them later.
    rows = visible.select_related("condition", "source").annotate(region_boxes=RegionBoxes()).in_bulk([i for i, _ in ranked])
    return [SearchHit(image=rows[i], score=s, **labels) for i, s in ranked if i in rows]


def _diversified(index: VectorIndex, vector: np.ndarray, filters: ImageFilters, k: int, exclude: set[int]) -> list[SearchHit]:
    """The condition on every skin type: round-robin over Fitzpatrick types, each type's best first."""
    types = [t for t in filters.skin_types if t is not None] or FITZPATRICK_TYPES
    # Each type is fetched k deep so sparse types leave room for the others.
    groups = [_hits(index, vector, filters.narrowed(skin_types=(t,)), k, exclude) for t in types]
    groups = sorted((g for g in groups if g), key=lambda g: -g[0].score)
    hits: list[SearchHit] = []
    for rank in range(k):
        for group in groups:
            if rank < len(group) and len(hits) < k:
                hits.append(group[rank])
    return hits


def query_total(filters: ImageFilters, *, index_version: str, model_version: str, exclude: tuple[int, ...] = ()) -> int:
    """Images passing `filters` that the index holds: what a ranking can page through.

    Counted against the index, not the catalogue, so page 1 and page 2 agree even while an
    image is visible but not yet indexed (freshness: within a minute, docs/search.md).
    """
    index, _, _ = _index_for(model_version)
    allowed = _ids(images_filtered(filters))
    inside = np.isin(allowed, _index_ids(index), assume_unique=True)
    return int(inside.sum()) - sum(1 for i in exclude if i in set(allowed[inside].tolist()))


def searchable_count(image_ids: list[int]) -> int | None:
    """How many of these images the published index holds (None: no index published yet).

    Reads the live index only (no model load), so staff pages can say what is searchable.
    """
    try:
        index, _ = _live_index(str(settings.SEARCH_INDEX_DIR)).get()
    except IndexUnavailable:
        return None
    return int(np.isin(np.asarray(image_ids, dtype=np.int64), _index_ids(index)).sum())


_ids_cache: dict[int, tuple[VectorIndex, np.ndarray]] = {}


def _index_ids(index: VectorIndex) -> np.ndarray:
    # One index object per published version: its ids are read once.
    cached = _ids_cache.get(id(index))
    if cached is None or cached[0] is not index:
        _ids_cache.clear()
        cached = _ids_cache[id(index)] = (index, index.ids())
    return cached[1]


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
    _ids_cache.clear()
    with _text_lock:
        _text_cache.clear()
    distribution.reset()
    with _fallback_lock:
        _fallback.clear()
