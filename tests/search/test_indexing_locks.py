"""Index builds: one at a time (single flight), and versions go live in order."""

from __future__ import annotations

import fcntl
from contextlib import contextmanager

import psycopg
import pytest
from django.db import connection

from search import indexing
from search.errors import SearchUnavailable
from search.models import IndexBuild


@pytest.fixture
def atlas(search_settings, add_image):
    for slug in ("melanoma", "psoriasis"):
        add_image(slug, skin_type=3)


@contextmanager
def another_build_running(settings):
    """Hold the build lock the way another process (or host) would."""
    if connection.vendor == "postgresql":
        s = connection.settings_dict
        with psycopg.connect(host=s["HOST"] or "127.0.0.1", port=s["PORT"] or 5432, user=s["USER"],
                             password=s["PASSWORD"] or None, dbname=s["NAME"], autocommit=True) as other:
            other.execute("SELECT pg_advisory_lock(%s)", [indexing.BUILD_LOCK_KEY])
            yield
            other.execute("SELECT pg_advisory_unlock(%s)", [indexing.BUILD_LOCK_KEY])
        return
    settings.SEARCH_INDEX_DIR.mkdir(parents=True, exist_ok=True)
    with open(settings.SEARCH_INDEX_DIR / ".build.lock", "a") as lock:  # its own open file: a separate lock
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def test_a_build_waits_for_the_running_one_then_gives_up(atlas, settings):
    settings.SEARCH_INDEX_BUILD_WAIT_SECONDS = 0
    with another_build_running(settings):
        with pytest.raises(indexing.IndexBuildBusy, match="another index build is running"):
            indexing.index_rebuild()
        assert not IndexBuild.objects.exists()  # no row, no version number taken
    build = indexing.index_rebuild()  # the lock is free again
    assert build.status == "succeeded" and indexing.index_store().read_pointer()["version"] == build.pk


def test_the_build_lock_is_free_after_a_failed_build(atlas, settings, monkeypatch):
    monkeypatch.setattr(indexing, "embeddings_update", lambda **kw: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        indexing.index_rebuild()
    monkeypatch.undo()
    settings.SEARCH_INDEX_BUILD_WAIT_SECONDS = 0
    assert indexing.index_rebuild().status == "succeeded"


def test_a_build_older_than_the_live_version_is_not_published(atlas, settings):
    newer = indexing.index_rebuild()
    # A newer version went live meanwhile (say, fetched from another host's build).
    store = indexing.index_store()
    pointer = store.read_pointer()
    with store.publishing():
        store.swap({**pointer, "version": newer.pk + 1000})
    with pytest.raises(SearchUnavailable, match="already live"):
        indexing.index_rebuild(full=True)
    failed = IndexBuild.objects.filter(status="failed").get()
    assert failed.pk < newer.pk + 1000 and "already live" in failed.error
    assert store.read_pointer()["version"] == newer.pk + 1000
