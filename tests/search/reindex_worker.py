"""A Celery worker with injected read faults, for tests/search/test_reindex_broker.py only.

    REINDEX_FAULTS=<dir> python tests/search/reindex_worker.py <celery worker arguments>

A file named after an image id in REINDEX_FAULTS makes reading that image raise RuntimeError
(not an unreadable-file error, which a chunk tolerates): "2" fails twice then reads, "-1"
always fails, "hang" blocks (a worker to kill mid-chunk). Nothing else changes.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import django  # noqa: E402

django.setup()
from search import indexing  # noqa: E402

FAULTS = Path(os.environ["REINDEX_FAULTS"])
_read = indexing.open_pixels


def _faulty_open_pixels(image):
    marker = FAULTS / str(image.pk)
    if marker.exists():
        left = marker.read_text().strip()
        if left == "hang":
            time.sleep(600)
        elif left != "0":
            if left != "-1":
                marker.write_text(str(int(left) - 1))
            raise RuntimeError(f"injected fault reading image {image.pk}")
    return _read(image)


indexing.open_pixels = _faulty_open_pixels

if __name__ == "__main__":
    from celery.__main__ import main

    sys.argv = ["celery", *sys.argv[1:]]
    main()
