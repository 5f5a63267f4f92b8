"""Index versions published to storage by the worker, fetched by each web replica."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage

from search import distribution
from search.index import IndexStore, LiveIndex
from search.indexing import index_rebuild, index_store
from search.query import reset_caches, search_text

pytestmark = pytest.mark.django_db


@pytest.fixture
def publishing(search_settings, settings):
    settings.SEARCH_INDEX_PUBLISH = True
    return settings


def _replica(tmp_path) -> IndexStore:
    return IndexStore(tmp_path / "replica-index")


def test_a_build_uploads_its_version_with_a_checksum(publishing, add_image):
    add_image("melanoma", skin_type=5)
    build = index_rebuild()
    assert distribution.remote_versions() == [build.pk]
    assert default_storage.exists(f"search-index/index-{build.pk:06d}.faiss")
    assert default_storage.exists(f"search-index/index-{build.pk:06d}.json")


def test_a_replica_fetches_the_newest_version_and_answers_the_same(publishing, add_image, tmp_path):
    for t in (1, 3, 5):
        add_image("melanoma", skin_type=t)
    first = index_rebuild()
    replica = _replica(tmp_path)
    assert distribution.index_fetch(store=replica) == first.pk
    assert distribution.index_fetch(store=replica) is None  # nothing newer
    add_image("psoriasis", skin_type=6)
    second = index_rebuild()
    assert distribution.index_fetch(store=replica) == second.pk
    served, pointer = LiveIndex(replica).get()
    built, _ = index_store().load_current()
    assert pointer["version"] == second.pk and sorted(served.ids()) == sorted(built.ids())


def test_an_incomplete_upload_is_ignored_and_the_replica_keeps_its_version(publishing, add_image, tmp_path):
    add_image("melanoma", skin_type=2)
    first = index_rebuild()
    replica = _replica(tmp_path)
    distribution.index_fetch(store=replica)
    add_image("melanoma", skin_type=4)
    second = index_rebuild()
    # The worker died mid-upload of the next version: the index object is there, its JSON not.
    default_storage.delete(f"search-index/index-{second.pk:06d}.json")
    assert distribution.index_fetch(store=replica) is None
    assert replica.read_pointer()["version"] == first.pk


def test_a_corrupt_newest_version_falls_back_to_the_next_readable_one(publishing, add_image, tmp_path):
    add_image("melanoma", skin_type=2)
    first = index_rebuild()
    add_image("melanoma", skin_type=4)
    second = index_rebuild()
    name = f"search-index/index-{second.pk:06d}.faiss"
    with default_storage.open(name, "rb") as handle:
        data = handle.read()
    default_storage.delete(name)
    default_storage.save(name, __import__("io").BytesIO(data[: len(data) // 2]))  # truncated object
    replica = _replica(tmp_path)
    assert distribution.index_fetch(store=replica) == first.pk
    assert replica.read_pointer()["version"] == first.pk
    assert not list(replica.directory.glob(".*download"))  # no temp file left behind
    LiveIndex(replica).get()  # what it installed loads


def test_storage_keeps_the_newest_three_versions(publishing, add_image):
    builds = []
    for t in (1, 2, 3, 4, 5):
        add_image("melanoma", skin_type=t)
        builds.append(index_rebuild())
    assert distribution.remote_versions() == [b.pk for b in builds[::-1][:3]]
    assert not default_storage.exists(f"search-index/index-{builds[0].pk:06d}.faiss")


def test_a_fresh_web_replica_loads_the_published_index_on_its_first_query(publishing, add_image, tmp_path, settings):
    for t in (2, 5):
        add_image("melanoma", skin_type=t)
    build = index_rebuild()
    worker_answer = [h.image.pk for h in search_text(query="melanoma on dark skin").hits]
    settings.SEARCH_INDEX_DIR = tmp_path / "web-host"  # another host: empty local index dir
    reset_caches()
    result = search_text(query="melanoma on dark skin")
    assert result.index_version == str(build.pk) and result.fallback == ""
    assert [h.image.pk for h in result.hits] == worker_answer


def test_without_publishing_nothing_goes_to_storage(search_settings, add_image):
    add_image("melanoma", skin_type=2)
    index_rebuild()
    assert distribution.remote_versions() == []


def test_a_fresh_worker_host_updates_the_published_version_instead_of_rebuilding(publishing, add_image):
    import shutil

    add_image("melanoma", skin_type=2)
    first = index_rebuild()
    shutil.rmtree(index_store().directory)  # another worker host: nothing local
    add_image("melanoma", skin_type=6)
    second = index_rebuild()
    assert not second.full and second.vector_count == 2  # incremental, from the fetched version
    assert distribution.remote_versions()[:2] == [second.pk, first.pk]
