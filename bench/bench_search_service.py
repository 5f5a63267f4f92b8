"""End-to-end search latency through the service, and reindex cost, on the demo atlas.

    ATLAS_VAR_DIR=/tmp/atlas-search nice .venv/bin/python bench/bench_search_service.py

Needs an embedded, indexed demo atlas (seed_demo, train_clip, reindex). Measures, in one run:
- text query latency (encode + FAISS + database rows) for search_text, p50/p99, against the
  encoder alone (embed_texts) and the bare index search, so the shares are visible;
- photo query latency (decode + encode + search) for search_image;
- reindex: incremental with 1% "new" images (their stored vectors are deleted first, so the
  build must embed them) against a full index rebuild from stored vectors and against
  re-embedding everything from scratch (what a reindex would cost without stored vectors).
The database and index end in the same state they started in (same model, same vectors).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atlas.settings.local")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402

from atlas.filters import ImageFilters  # noqa: E402
from atlas.models import Condition, Image  # noqa: E402
from search import indexing, query  # noqa: E402
from search.models import ImageEmbedding  # noqa: E402


def percentiles(times: list[float]) -> str:
    ms = np.array(times) * 1000
    return f"p50 {np.percentile(ms, 50):.1f} ms, p99 {np.percentile(ms, 99):.1f} ms"


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def main() -> None:
    encoder = indexing.encoder_get()
    images = Image.objects.public().count()
    print(f"demo atlas: {images} public images; model {encoder.version}; {os.cpu_count()} CPUs shared with other jobs")
    conditions = list(Condition.objects.exclude(slug="other").values_list("name", flat=True))
    tones = ["light", "dark", "very dark", "medium", "fair", "dark brown"]
    queries = [f"{c} on {t} skin" for c in conditions for t in tones][:120]
    query.search_text(query=queries[0], k=10)  # warm: model, index, database connection

    text_total = timed(lambda it=iter(queries): query.search_text(query=next(it), k=10), len(queries))
    encode_only = timed(lambda it=iter(queries): encoder.embed_texts([next(it)]), len(queries))
    index, _, _ = query._index_for(encoder.version)
    vectors = encoder.embed_texts(queries)
    index_only = timed(lambda it=iter(vectors): index.search(next(it), 10), len(vectors))
    filtered = timed(lambda it=iter(queries): query.search_text(query=next(it), k=10, filters=ImageFilters(skin_types=(5, 6))), len(queries))
    print(f"search_text (encode + index + rows), {len(queries)} queries: {percentiles(text_total)}")
    print(f"  of which encode_text alone: {percentiles(encode_only)}; index.search alone: {percentiles(index_only)}")
    print(f"  with an explicit skin-type filter (V-VI): {percentiles(filtered)}")

    sample = list(Image.objects.public().order_by("?")[:40])
    photos = []
    for image in sample:
        with image.file.open("rb") as handle:
            photos.append(handle.read())
    photo_total = timed(lambda it=iter(photos): query.search_image(data=next(it), k=10), len(photos))
    same = sum(query.search_image(data=d, k=1).hits[0].image.pk == im.pk for d, im in zip(photos, sample, strict=True))
    print(f"search_image (decode + encode + index + rows), {len(photos)} photos of {sample[0].width}px: {percentiles(photo_total)}; "
          f"the photo itself ranked first {same}/{len(photos)}")

    # Reindex: 1% new images vs full rebuild vs re-embedding everything.
    ids = list(Image.objects.public().order_by("?").values_list("id", flat=True)[: max(1, images // 100)])
    ImageEmbedding.objects.filter(image_id__in=ids, model_version=encoder.version).delete()
    started = time.perf_counter()
    build = indexing.index_rebuild()
    incremental = time.perf_counter() - started
    started = time.perf_counter()
    indexing.index_rebuild(full=True)
    full_index = time.perf_counter() - started
    ImageEmbedding.objects.filter(model_version=encoder.version).delete()
    started = time.perf_counter()
    scratch = indexing.index_rebuild(full=True)
    from_scratch = time.perf_counter() - started
    print(f"reindex with {len(ids)} new images (1%): incremental {incremental:.2f}s (embedded {build.embedded_count}, full={build.full}); "
          f"full index rebuild from stored vectors {full_index:.2f}s; re-embed all {scratch.embedded_count} + rebuild {from_scratch:.2f}s "
          f"-> incremental is {from_scratch / incremental:.0f}x cheaper than re-embedding")
    print(f"median text query {statistics.median(text_total) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
