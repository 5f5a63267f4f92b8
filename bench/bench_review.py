"""Cost of the review rule (docs/benchmarks.md, "Review of synthetic images").

The public rule (atlas.models.public_q: not hidden, condition curated, synthetic approved) beside
the filter it replaced (is_public and condition curated), for the coverage matrix (which now also
counts pending images apart) and for counting public images; and the cost of review decisions,
one image at a time and in a batch of 100. 20,000 image rows (10% synthetic, half of those
pending) are bulk-created in their own database (no files: only queries are measured). Old and
new are measured in the same run, in alternation, as medians, and given as ratios.

    ATLAS_VAR_DIR=/tmp/atlas-review-bench .venv/bin/python bench/bench_review.py
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atlas.settings.local")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.models import Group, User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db.models import Count, Q  # noqa: E402

from atlas.models import Condition, Image, Source  # noqa: E402
from atlas.selectors import coverage_matrix  # noqa: E402
from generation.review import synthetic_images_review  # noqa: E402

IMAGES = 20_000


def _seed() -> None:
    source = Source.objects.get_or_create(slug="bench", defaults={"name": "Bench", "licence": "CC0-1.0"})[0]
    conditions = list(Condition.objects.all())
    rng = random.Random(0)
    rows = []
    for i in range(IMAGES):
        synthetic = i % 10 == 0
        state = ("pending" if i % 20 == 0 else "approved") if synthetic else "not_required"
        rows.append(Image(public_id=uuid.uuid4(), file=f"images/x/{i}.png", thumbnail=f"thumbnails/x/{i}.jpg",
                          sha256=f"{i:064x}", width=64, height=64, origin="synthetic" if synthetic else "real",
                          condition=rng.choice(conditions), fitzpatrick_type=rng.randint(1, 6), source=source,
                          licence="CC0-1.0", review_state=state))
    Image.objects.bulk_create(rows, batch_size=2000)


def _old_matrix() -> list:
    return list(
        Image.objects.filter(is_public=True, condition__needs_curation=False).order_by()
        .values("condition__slug", "fitzpatrick_type")
        .annotate(real=Count("id", filter=Q(origin="real")), synthetic=Count("id", filter=Q(origin="synthetic")))
    )


def _pair(old, new, rounds: int = 15) -> tuple[float, float]:
    old(), new()
    a, b = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        old()
        a.append(time.perf_counter() - t)
        t = time.perf_counter()
        new()
        b.append(time.perf_counter() - t)
    return statistics.median(a) * 1000, statistics.median(b) * 1000


def main() -> None:
    settings.ATLAS_AFTER_INGEST_TASKS = []  # measure the decision, not the broker
    call_command("migrate", verbosity=0)
    if not Image.objects.exists():
        _seed()
    print(f"{Image.objects.count()} images, {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, {os.cpu_count()} CPUs")
    old, new = _pair(_old_matrix, coverage_matrix)
    print(f"coverage matrix: old filter {old:.1f} ms, public rule + pending apart {new:.1f} ms, ratio {new / old:.2f}")
    old, new = _pair(lambda: Image.objects.filter(is_public=True, condition__needs_curation=False).count(),
                     lambda: Image.objects.public().count())
    print(f"count public images: old filter {old:.1f} ms, public rule {new:.1f} ms, ratio {new / old:.2f}")
    user = User.objects.get_or_create(username="bench-reviewer", defaults={"is_staff": True})[0]
    user.groups.add(Group.objects.get(name="Reviewers"))
    user = User.objects.get(pk=user.pk)
    ids = list(Image.objects.pending_review().values_list("public_id", flat=True)[:200])
    if len(ids) < 200:
        print("fewer than 200 pending images left: use a fresh ATLAS_VAR_DIR to measure decisions")
        return
    t = time.perf_counter()
    for public_id in ids[:100]:
        synthetic_images_review(public_ids=[public_id], decision="approve", reviewer=user)
    one = (time.perf_counter() - t) * 10
    t = time.perf_counter()
    synthetic_images_review(public_ids=ids[100:], decision="reject", reviewer=user, reason="bench")
    batch = (time.perf_counter() - t) * 10
    print(f"review decisions: one at a time {one:.2f} ms/image, in a batch of 100 {batch:.2f} ms/image")


if __name__ == "__main__":
    main()
