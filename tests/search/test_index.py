import threading

import faiss
import numpy as np
import pytest

from search.index import IndexSpec, IndexStore, IndexUnavailable, LiveIndex, VectorIndex, choose_spec

DIM = 32


def clustered(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, DIM))
    return (centres[rng.integers(0, 20, n)] + 0.3 * rng.normal(size=(n, DIM))).astype(np.float32)


SPECS = [IndexSpec("flat"), IndexSpec("ivf", nlist=64, nprobe=1)]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.kind)
def test_a_vector_finds_itself_first(spec):
    vectors = clustered(3000)
    index = VectorIndex.build(np.arange(3000) * 7 + 1, vectors, spec=spec)
    hits = index.search(vectors[42], 5)
    assert hits[0][0] == 42 * 7 + 1 and hits[0][1] == pytest.approx(1.0, abs=1e-4)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.kind)
def test_removed_ids_never_come_back(spec):
    vectors = clustered(3000)
    ids = np.arange(3000)
    index = VectorIndex.build(ids, vectors, spec=spec)
    gone = ids[:1500]
    assert index.remove(gone) == 1500
    assert len(index) == 1500
    for row in (0, 10, 700):
        assert not set(i for i, _ in index.search(vectors[row], 50)) & set(gone.tolist())
    assert index.remove(gone) == 0  # removing twice is harmless


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.kind)
def test_a_filtered_query_returns_k_when_k_matches_exist(spec):
    vectors = clustered(5000)
    index = VectorIndex.build(np.arange(5000), vectors, spec=spec)
    # 12 allowed ids far from the query's cluster: one probed list (nprobe=1) would miss them.
    rng = np.random.default_rng(1)
    allowed = rng.choice(5000, size=12, replace=False)
    hits = index.search(vectors[0], 10, allowed_ids=allowed)
    assert len(hits) == 10 and set(i for i, _ in hits) <= set(allowed.tolist())
    # Fewer matches than k: all of them, and only them.
    assert sorted(i for i, _ in index.search(vectors[0], 10, allowed_ids=allowed[:3])) == sorted(allowed[:3].tolist())
    assert index.search(vectors[0], 10, allowed_ids=[999_999]) == []


def test_a_filtered_flat_query_is_exact():
    vectors = clustered(2000)
    index = VectorIndex.build(np.arange(2000), vectors, spec=IndexSpec("flat"))
    allowed = np.arange(0, 2000, 3)
    normalised = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    expected = allowed[np.argsort(-(normalised[allowed] @ normalised[5]))[:10]]
    assert [i for i, _ in index.search(vectors[5], 10, allowed_ids=allowed)] == expected.tolist()


def test_re_adding_an_id_replaces_its_vector():
    vectors = clustered(100)
    index = VectorIndex.build(np.arange(100), vectors, spec=IndexSpec("flat"))
    index.add(np.array([5]), vectors[50:51])
    assert len(index) == 100
    assert {i for i, _ in index.search(vectors[50], 2)} == {5, 50}


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.kind)
def test_save_and_load_round_trip(spec, tmp_path):
    vectors = clustered(3000)
    index = VectorIndex.build(np.arange(3000) + 10, vectors, spec=spec)
    index.remove([10, 11])
    index.save(tmp_path / "i.faiss")
    loaded = VectorIndex.load(tmp_path / "i.faiss", nprobe=spec.nprobe)
    assert loaded.spec.kind == spec.kind and len(loaded) == 2998
    assert np.array_equal(np.sort(loaded.ids()), np.sort(index.ids()))
    assert loaded.search(vectors[7], 5) == index.search(vectors[7], 5)
    assert not list(tmp_path.glob(".*tmp"))


def test_size_picks_the_layout():
    assert choose_spec(10_000).kind == "flat"
    big = choose_spec(1_000_000)
    assert big.kind == "ivf" and big.nlist == 4096 and big.codes == "SQ8" and big.rerank > 0
    assert choose_spec(10_000_000).nlist == 16384  # the scanned share falls as the collection grows


def test_a_corrupt_or_missing_file_is_a_clear_error(tmp_path):
    (tmp_path / "bad.faiss").write_bytes(b"not an index" * 10)
    with pytest.raises(IndexUnavailable, match="corrupt"):
        VectorIndex.load(tmp_path / "bad.faiss")
    with pytest.raises(IndexUnavailable, match="does not exist"):
        VectorIndex.load(tmp_path / "missing.faiss")


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.kind)
def test_a_crash_while_saving_leaves_the_old_file_whole(spec, tmp_path, monkeypatch):
    vectors = clustered(3000)
    path = tmp_path / "index" / "i.faiss"
    VectorIndex.build(np.arange(3000), vectors, spec=spec).save(path)
    before = path.read_bytes()

    def disk_full(fd):
        raise OSError("disk full")

    monkeypatch.setattr("search.index.os.fsync", disk_full)
    with pytest.raises(OSError):
        VectorIndex.build(np.arange(2000), vectors[:2000], spec=spec).save(path)
    assert path.read_bytes() == before
    assert list(path.parent.iterdir()) == [path]


def test_readers_see_whole_versions_while_new_ones_are_published(tmp_path):
    store = IndexStore(tmp_path)
    vectors = clustered(400)
    store.publish(VectorIndex.build(np.arange(101), vectors[:101], spec=IndexSpec("flat")), version=1, model_version="m")
    live = LiveIndex(store)
    errors, seen = [], set()
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                index, pointer = live.get()
                assert len(index) == pointer["count"] == 100 + pointer["version"]
                seen.add(pointer["version"])
                index.search(vectors[0], 5)
            except Exception as exc:  # noqa: BLE001 - any failure is the finding
                errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    for version in range(2, 40):
        store.publish(VectorIndex.build(np.arange(100 + version), vectors[: 100 + version], spec=IndexSpec("flat")), version=version, model_version="m")
    done.set()
    reader.join()
    assert errors == []
    assert live.get()[1]["version"] == 39  # the new version is picked up without a restart
    assert len(list(tmp_path.glob("index-*.faiss"))) == 2  # old versions are pruned


def test_an_older_version_never_replaces_a_newer_live_one(tmp_path):
    from search.index import IndexSuperseded

    store = IndexStore(tmp_path)
    vectors = clustered(50)
    store.publish(VectorIndex.build(np.arange(20), vectors[:20], spec=IndexSpec("flat")), version=5, model_version="m")
    # Build 4 started first and finished last: it must not go live over 5.
    with pytest.raises(IndexSuperseded, match="version 5 is already live"):
        store.publish(VectorIndex.build(np.arange(10), vectors[:10], spec=IndexSpec("flat")), version=4, model_version="m")
    assert store.read_pointer()["version"] == 5 and store.read_pointer()["count"] == 20
    assert not (tmp_path / "index-000004.faiss").exists()
    store.publish(VectorIndex.build(np.arange(30), vectors[:30], spec=IndexSpec("flat")), version=6, model_version="m")
    assert store.read_pointer()["version"] == 6


# --- one copy per host: the file is memory-mapped, and a damaged one is refused ---------------

IVF = SPECS[1]


def _mapped_files() -> str:
    return open("/proc/self/maps").read()


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.kind)
def test_a_loaded_index_is_mapped_from_its_file_not_copied(spec, tmp_path):
    vectors = clustered(3000)
    built = VectorIndex.build(np.arange(3000) * 3, vectors, spec=spec)
    path = tmp_path / "shared.faiss"
    built.save(path)
    index = VectorIndex.load(path)
    assert index.mapped and str(path) in _mapped_files()
    # The vectors and ids are views of the mapped file (no private copy), and read-only.
    assert not index.ids().flags.writeable and not index._vectors.flags.writeable
    assert not index._vectors.flags.owndata and not index._ids.flags.owndata
    assert index.search(vectors[11], 5) == built.search(vectors[11], 5)
    with pytest.raises(RuntimeError, match="read-only"):
        index.add(np.array([1]), vectors[:1])
    with pytest.raises(RuntimeError, match="read-only"):
        index.remove([3])
    private = VectorIndex.load(path, mmap=False)  # what a build updates: a private copy
    private.remove([3])
    assert len(private) == 2999 and len(VectorIndex.load(path)) == 3000


def _damage(path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncated":
        path.write_bytes(bytes(data[: len(data) // 2]))
    elif how == "cut-footer":
        path.write_bytes(bytes(data[:-5]))
    else:  # one flipped byte in the middle (the vectors) or at the start (the FAISS part)
        at = len(data) // 2 if how == "flipped-vectors" else 100
        data[at] ^= 0xFF
        path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["truncated", "cut-footer", "flipped-vectors", "flipped-faiss"])
def test_a_truncated_or_corrupt_file_is_refused(how, tmp_path):
    path = tmp_path / "i.faiss"
    VectorIndex.build(np.arange(3000), clustered(3000), spec=IVF).save(path)
    _damage(path, how)
    with pytest.raises(IndexUnavailable, match="corrupt"):
        VectorIndex.load(path)
    with pytest.raises(IndexUnavailable, match="corrupt"):
        VectorIndex.load(path, mmap=False)


def test_a_file_of_the_old_format_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "old.faiss"
    faiss.write_index(faiss.IndexIDMap2(faiss.IndexFlatIP(DIM)), str(path))
    with pytest.raises(IndexUnavailable, match="reindex --full"):
        VectorIndex.load(path)


@pytest.mark.parametrize("how", ["truncated", "flipped-vectors"])
def test_a_damaged_new_version_is_refused_and_the_previous_one_keeps_serving(how, tmp_path):
    store = IndexStore(tmp_path)
    vectors = clustered(3000)
    store.publish(VectorIndex.build(np.arange(2000), vectors[:2000], spec=IVF), version=1, model_version="m")
    live = LiveIndex(store)
    first, pointer = live.get()
    assert pointer["version"] == 1 and first.mapped
    path = store.publish(VectorIndex.build(np.arange(3000), vectors, spec=IVF), version=2, model_version="m")
    _damage(path, how)
    index, pointer = live.get()
    assert pointer["version"] == 1 and index is first and len(index) == 2000
    assert index.search(vectors[5], 3)[0][0] == 5  # still answering from version 1's mapping
    store.publish(VectorIndex.build(np.arange(2500), vectors[:2500], spec=IVF), version=3, model_version="m")
    index, pointer = live.get()
    assert pointer["version"] == 3 and len(index) == 2500
    assert first.search(vectors[5], 3)[0][0] == 5  # a pruned file stays readable while mapped


# --- the ivf layout: complete filters, incremental updates -------------------------------------


@pytest.mark.parametrize("exact_max", [0, 50_000], ids=["inside-faiss", "exact-over-allowed"])
@pytest.mark.parametrize("id_scale", [1, 10**9], ids=["bitmap", "hash-set"])
def test_ivf_filters_are_complete(exact_max, id_scale, monkeypatch):
    monkeypatch.setattr("search.index.EXACT_FILTER_MAX", exact_max)
    vectors = clustered(5000)
    ids = np.arange(5000, dtype=np.int64) * id_scale + 7
    index = VectorIndex.build(ids, vectors, spec=IVF)
    rng = np.random.default_rng(3)
    normalised = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    for size in (3, 12, 400, 2500):
        rows = rng.choice(5000, size=size, replace=False)
        allowed = ids[rows]
        hits = index.search(vectors[0], 10, allowed_ids=allowed)
        assert len(hits) == min(10, size) and {i for i, _ in hits} <= set(allowed.tolist())
        if size <= 12:  # few allowed: the exact top, in order
            best = rows[np.argsort(-(normalised[rows] @ normalised[0]))[:10]]
            assert [i for i, _ in hits] == ids[best].tolist()
    assert index.search(vectors[0], 10, allowed_ids=[123_456_789_000_001]) == []


def test_ivf_reranking_scores_are_exact():
    vectors = clustered(3000)
    index = VectorIndex.build(np.arange(3000), vectors, spec=IVF)
    normalised = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    for image_id, score in index.search(vectors[9], 10):
        assert score == pytest.approx(float(normalised[image_id] @ normalised[9]), abs=1e-5)


def test_an_incremental_update_of_a_published_ivf_index(tmp_path):
    vectors = clustered(4000)
    path = tmp_path / "i.faiss"
    VectorIndex.build(np.arange(3000), vectors[:3000], spec=IVF).save(path)
    live = VectorIndex.load(path, mmap=False)
    live.add(np.arange(3000, 4000), vectors[3000:])  # new images
    live.add(np.array([7]), vectors[3500:3501])  # an image whose vector changed
    assert live.remove(np.arange(100, 200)) == 100  # deleted images
    live.save(path)
    index = VectorIndex.load(path)
    assert len(index) == 3900 and index._ivf.ntotal == 3900
    assert index.search(vectors[3333], 1)[0][0] == 3333
    assert {i for i, _ in index.search(vectors[3500], 2)} == {7, 3500}
    assert not {i for i, _ in index.search(vectors[150], 50)} & set(range(100, 200))
    assert np.array_equal(index.ids(), np.setdiff1d(np.arange(4000), np.arange(100, 200)))
