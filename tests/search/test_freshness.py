"""Freshness: an image that becomes visible is searchable without the nightly reindex."""

from __future__ import annotations

import contextlib
import threading

import pytest
from django.db import connection
from django.core.cache import cache

from atlas.models import Condition
from atlas.services.image_files import image_visibility_set
from atlas.services.ingestion import image_ingest
from search import indexing
from search.models import IndexBuild
from search.query import search_text
from tests.conftest import make_image_bytes

pytestmark = pytest.mark.django_db


@contextlib.contextmanager
def _build_running_elsewhere():
    """Hold the build lock from another thread, so from another database session: on
    PostgreSQL a session's advisory locks are re-entrant, so holding it in the test's own
    session would not block the refresh the way another worker's build does."""
    held, release = threading.Event(), threading.Event()

    def build() -> None:
        try:
            with indexing.index_build_lock():
                held.set()
                release.wait(timeout=60)
        finally:
            connection.close()

    worker = threading.Thread(target=build)
    worker.start()
    try:
        assert held.wait(timeout=60), "the other build never took the lock"
        yield
    finally:
        release.set()
        worker.join(timeout=60)


@pytest.fixture(autouse=True)
def no_scheduled_refresh():
    cache.delete(indexing._REFRESH_KEY)
    yield
    cache.delete(indexing._REFRESH_KEY)


def test_an_ingested_image_is_searchable_without_a_reindex(search_settings, add_image, source, settings, django_capture_on_commit_callbacks):
    for t in (2, 5):
        add_image("tinea", skin_type=t)
    indexing.index_rebuild()
    settings.ATLAS_AFTER_INGEST_TASKS = ["search.tasks.embed_image_task"]  # eager in tests: runs on commit
    with django_capture_on_commit_callbacks(execute=True):
        new = image_ingest(
            file=make_image_bytes(color=(10, 200, 30), seed=99, fmt="PNG"),
            condition=Condition.objects.get(slug="acne"),
            source=source,
            origin="real",
            fitzpatrick_type=4,
        ).image
    ids = [hit.image.pk for hit in search_text(query="acne", k=5).hits]
    assert new.pk in ids and IndexBuild.objects.filter(status="succeeded").count() == 2


def test_a_curator_making_an_image_public_makes_it_searchable(search_settings, add_image, settings, django_capture_on_commit_callbacks):
    add_image("tinea", skin_type=2)
    hidden = add_image("acne", skin_type=3, is_public=False)
    indexing.index_rebuild()
    assert hidden.pk not in [hit.image.pk for hit in search_text(query="acne", k=5).hits]
    settings.ATLAS_AFTER_INGEST_TASKS = ["search.tasks.embed_image_task"]
    with django_capture_on_commit_callbacks(execute=True):
        image_visibility_set(image=hidden, is_public=True)  # what the admin's publish calls
    assert hidden.pk in [hit.image.pk for hit in search_text(query="acne", k=5).hits]


def test_refreshes_are_debounced(search_settings, monkeypatch):
    scheduled = []
    monkeypatch.setattr("search.tasks.index_refresh_task.apply_async", lambda **kw: scheduled.append(kw))
    assert indexing.index_refresh_soon() is True
    assert indexing.index_refresh_soon() is False  # joins the update already scheduled
    assert scheduled == [{"countdown": search_settings.SEARCH_FRESH_DELAY_SECONDS}]
    assert indexing.index_searchable_since()["refresh_scheduled"] is True
    cache.delete(indexing._REFRESH_KEY)  # what index_refresh does first
    assert indexing.index_refresh_soon() is True and len(scheduled) == 2


def test_a_broker_outage_leaves_no_stale_schedule(search_settings, monkeypatch):
    def down(**kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr("search.tasks.index_refresh_task.apply_async", down)
    assert indexing.index_refresh_soon() is False
    assert cache.get(indexing._REFRESH_KEY) is None  # the next image tries again


def test_a_refresh_does_not_queue_behind_a_running_build_it_schedules_itself_again(search_settings, add_image, monkeypatch):
    add_image("acne")
    indexing.index_rebuild()
    scheduled = []
    monkeypatch.setattr("search.tasks.index_refresh_task.apply_async", lambda **kw: scheduled.append(kw))
    monkeypatch.setattr(indexing, "REFRESH_LOCK_WAIT_SECONDS", 0.2)
    with _build_running_elsewhere():
        assert indexing.index_refresh() is None
    assert len(scheduled) == 1
    assert indexing.index_refresh().status == "succeeded"
