"""Remove stored files that no Image row refers to.

Ingestion writes its two files before the row commits and deletes them on any failure it
sees; what it cannot see (a worker killed between the write and the commit, an outer
transaction rolled back after it returned) leaves files behind. This sweep finds them.
Files younger than `older_than` are left alone: their ingestion may still be committing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from django.core.files.storage import default_storage
from django.db.models import Q
from django.utils import timezone

from atlas.models import Image

# Where image_ingest and image_visibility_set write (atlas/services/image_files.py).
SWEPT_FOLDERS = ("images", "thumbnails", "private/images", "private/thumbnails")


@dataclass
class OrphanSweep:
    checked: int = 0
    removed: list[str] = field(default_factory=list)  # or "would remove", on a dry run
    too_young: int = 0


def orphan_files_sweep(*, older_than: timedelta = timedelta(hours=1), dry_run: bool = False) -> OrphanSweep:
    report = OrphanSweep()
    cutoff = timezone.now() - older_than
    for names in _file_batches():
        report.checked += len(names)
        referenced = set(
            Image.objects.filter(Q(file__in=names) | Q(thumbnail__in=names)).values_list("file", "thumbnail").iterator()
        )
        known = {name for pair in referenced for name in pair}
        for name in names:
            if name in known:
                continue
            if default_storage.get_modified_time(name) > cutoff:
                report.too_young += 1
                continue
            if not dry_run:
                default_storage.delete(name)
            report.removed.append(name)
    return report


def _file_batches() -> Iterator[list[str]]:
    """Files of the swept folders, one folder at a time (images/ab/, thumbnails/cd/, ...)."""
    pending = [folder for folder in SWEPT_FOLDERS if default_storage.exists(folder)]
    while pending:
        folder = pending.pop()
        dirs, files = default_storage.listdir(folder)
        pending.extend(f"{folder}/{d}" for d in dirs)
        if files:
            yield [f"{folder}/{f}" for f in files]
