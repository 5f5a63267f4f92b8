"""The vector index: FAISS behind a small interface, plus versioned files and a live loader.

Django-free. Vectors are L2-normalised float32 and compared by inner product (= cosine).
FAISS ids are image ids. Two layouts, chosen by collection size (see docs/search.md for the
measurements behind the numbers):

- "flat": IndexIDMap2(IndexFlatIP), exact. Used below `FLAT_MAX` vectors, where exact search
  costs well under a millisecond.
- "ivf": IndexIVFFlat with nlist ~ 2*sqrt(n) lists. Chosen over HNSW because it supports
  `remove_ids` (incremental reindex drops deleted images in place) and because a filtered
  query can be made complete by probing more lists, up to all of them (= exact).

Filters run inside FAISS with an IDSelectorBatch (SearchParameters.sel). A filtered query
returns k results whenever k allowed ids are in the index: flat is exact; ivf starts with an
nprobe scaled by the filter's selectivity and quadruples it until enough results come back.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

logger = logging.getLogger(__name__)

FLAT_MAX = 50_000  # exact search below this many vectors
MIN_NPROBE = 16


def auto_nprobe(nlist: int) -> int:
    """Lists probed per query: 1/16 of them (at least 16). Measured in bench/bench_index.py:
    recall@10 0.99 at 100k (512 lists, nprobe 32); at 1M (2048 lists) nprobe 16 gave only 0.79
    and 64 gave 0.94, so a fixed nprobe does not scale with the collection."""
    return max(MIN_NPROBE, nlist // 16)


class IndexUnavailable(RuntimeError):
    """The index file is missing, unreadable or corrupt; the message says which."""


class IndexSuperseded(RuntimeError):
    """A newer version is already live: an older build never replaces it."""


@dataclass(frozen=True)
class IndexSpec:
    kind: str  # "flat" | "ivf"
    nlist: int = 0  # ivf: number of inverted lists (k-means centroids)
    nprobe: int = MIN_NPROBE  # ivf: lists scanned per query before any filter escalation


def choose_spec(n: int, *, flat_max: int = FLAT_MAX, nprobe: int = 0) -> IndexSpec:
    """nprobe 0 = auto_nprobe(nlist)."""
    if n < flat_max:
        return IndexSpec("flat")
    nlist = 2 ** round(math.log2(2 * math.sqrt(n)))
    nlist = int(min(4096, max(64, nlist)))
    return IndexSpec("ivf", nlist=nlist, nprobe=nprobe or auto_nprobe(nlist))


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class VectorIndex:
    def __init__(self, index: faiss.Index, spec: IndexSpec) -> None:
        self._index = index
        self.spec = spec
        self.dim = index.d
        self._ids = np.sort(_index_ids(index))

    # --- construction -----------------------------------------------------------------------

    @classmethod
    def empty(cls, dim: int, spec: IndexSpec) -> VectorIndex:
        if spec.kind == "flat":
            return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)), spec)
        if spec.kind == "ivf":
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, spec.nlist, faiss.METRIC_INNER_PRODUCT)
            index.own_fields = True
            quantizer.this.disown()  # the IVF index owns its quantizer now
            index.nprobe = spec.nprobe
            return cls(index, spec)
        raise ValueError(f"unknown index kind {spec.kind!r}")

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, *, spec: IndexSpec | None = None, seed: int = 0) -> VectorIndex:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vectors = normalise(vectors)
        spec = spec or choose_spec(len(ids))
        index = cls.empty(vectors.shape[1], spec)
        if spec.kind == "ivf":
            index._train(vectors, seed=seed)
        index.add(ids, vectors)
        return index

    def _train(self, vectors: np.ndarray, *, seed: int) -> None:
        # 40 points per list (FAISS asks for >= 39) and 10 k-means iterations: the lists only
        # need to be roughly balanced; this bounds training at 1M vectors to seconds of CPU.
        sample = min(len(vectors), 40 * self.spec.nlist)
        rows = np.random.default_rng(seed).choice(len(vectors), size=sample, replace=False)
        if sample < self.spec.nlist:
            raise ValueError(f"ivf with {self.spec.nlist} lists needs at least that many vectors, got {sample}")
        self._index.cp.niter = 10
        self._index.train(vectors[np.sort(rows)])

    # --- updates ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def ids(self) -> np.ndarray:
        return self._ids.copy()

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return
        vectors = normalise(vectors)
        if vectors.shape != (len(ids), self.dim):
            raise ValueError(f"expected {len(ids)} vectors of dim {self.dim}, got {vectors.shape}")
        if len(np.unique(ids)) != len(ids):
            raise ValueError("duplicate ids in one add")
        self.remove(ids)  # re-adding an id replaces its vector instead of duplicating it
        self._index.add_with_ids(vectors, ids)
        self._ids = np.union1d(self._ids, ids)

    def remove(self, ids: Iterable[int]) -> int:
        ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64)
        present = ids[np.isin(ids, self._ids)]
        if len(present) == 0:
            return 0
        removed = int(self._index.remove_ids(faiss.IDSelectorBatch(present)))
        self._ids = np.setdiff1d(self._ids, present, assume_unique=True)
        return removed

    # --- queries ----------------------------------------------------------------------------

    def search(self, query: np.ndarray, k: int, allowed_ids: Iterable[int] | None = None) -> list[tuple[int, float]]:
        """The k nearest ids (and inner products) to one query vector, best first.

        With allowed_ids only those ids can come back, and min(k, allowed ids in the index)
        results always do.
        """
        if k <= 0 or len(self) == 0:
            return []
        query = normalise(query)
        if allowed_ids is None:
            selector, available = None, len(self)
        else:
            allowed = np.unique(np.asarray(list(allowed_ids) if not isinstance(allowed_ids, np.ndarray) else allowed_ids, dtype=np.int64))
            allowed = allowed[np.isin(allowed, self._ids, assume_unique=True)]
            if len(allowed) == 0:
                return []
            selector, available = faiss.IDSelectorBatch(allowed), len(allowed)
        want = min(k, available)
        scores, ids = self._search_complete(query, k, selector, want)
        return [(int(i), float(s)) for i, s in zip(ids, scores, strict=True) if i >= 0][:k]

    def _search_complete(self, query: np.ndarray, k: int, selector, want: int) -> tuple[np.ndarray, np.ndarray]:
        if self.spec.kind == "flat":
            params = faiss.SearchParameters(sel=selector) if selector is not None else None
            scores, ids = self._index.search(query, k, params=params)
            return scores[0], ids[0]
        nlist = self.spec.nlist
        # A filter keeping 1% of the vectors needs ~100x the lists for the same number of hits.
        selectivity = want / max(1, len(self)) if selector is not None else 1.0
        nprobe = min(nlist, max(self.spec.nprobe, math.ceil(self.spec.nprobe / max(selectivity, 1e-9))))
        while True:
            params = faiss.SearchParametersIVF(sel=selector, nprobe=nprobe) if selector is not None else faiss.SearchParametersIVF(nprobe=nprobe)
            scores, ids = self._index.search(query, k, params=params)
            if int((ids[0] >= 0).sum()) >= want or nprobe >= nlist:
                return scores[0], ids[0]
            nprobe = min(nlist, nprobe * 4)

    def search_many(self, queries: np.ndarray, k: int, *, nprobe: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Unfiltered batch search (benchmarks, evaluation): (scores, ids) arrays of shape (n, k)."""
        queries = normalise(queries)
        params = faiss.SearchParametersIVF(nprobe=nprobe or self.spec.nprobe) if self.spec.kind == "ivf" else None
        return self._index.search(queries, k, params=params)

    # --- files ------------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write to a temp file in the same directory, then rename: readers see old or new, never half."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            faiss.write_index(self._index, str(tmp))
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: Path, *, nprobe: int = 0) -> VectorIndex:
        """nprobe 0 = auto_nprobe(nlist)."""
        path = Path(path)
        if not path.is_file():
            raise IndexUnavailable(f"index file {path} does not exist")
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise IndexUnavailable(f"index file {path} is unreadable or corrupt: {str(exc).splitlines()[0]}") from exc
        ivf = faiss.try_extract_index_ivf(index)
        if ivf is not None:
            spec = IndexSpec("ivf", nlist=int(ivf.nlist), nprobe=nprobe or auto_nprobe(int(ivf.nlist)))
        elif isinstance(index, faiss.IndexIDMap2):
            spec = IndexSpec("flat")
        else:
            raise IndexUnavailable(f"index file {path} holds an unexpected index type {type(index).__name__}")
        return cls(index, spec)


def _index_ids(index: faiss.Index) -> np.ndarray:
    if isinstance(index, faiss.IndexIDMap2 | faiss.IndexIDMap):
        return faiss.vector_to_array(index.id_map).astype(np.int64)
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is None:
        return np.arange(index.ntotal, dtype=np.int64)
    invlists = ivf.invlists
    parts = [
        faiss.rev_swig_ptr(invlists.get_ids(lst), invlists.list_size(lst)).copy()
        for lst in range(ivf.nlist)
        if invlists.list_size(lst) > 0
    ]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)


# --- published versions ---------------------------------------------------------------------


class IndexStore:
    """A directory of numbered index files and CURRENT.json naming the live one.

    Publishing writes the new index file (atomically), then swaps CURRENT.json (atomically).
    The previous file is kept so a reader that has just read the old pointer can still open it.
    """

    POINTER = "CURRENT.json"

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    @property
    def pointer_path(self) -> Path:
        return self.directory / self.POINTER

    def publish(self, index: VectorIndex, *, version: int, model_version: str) -> Path:
        """Make `version` live, unless the live version is as new or newer (IndexSuperseded):
        two builds that overlap publish in version order, whatever order they finish in."""
        path = self.directory / f"index-{version:06d}.faiss"
        with self.publishing():
            self.check_newer(version)
            index.save(path)
            self.swap({
                "version": version,
                "file": path.name,
                "model_version": model_version,
                "count": len(index),
                "kind": index.spec.kind,
                "nlist": index.spec.nlist,
                "nprobe": index.spec.nprobe,
                "published": time.time(),
            })
        self._prune(keep={path.name})
        return path

    @contextmanager
    def publishing(self):
        """Held while a version is checked and made live: one publisher at a time on this host
        (every process; released when the process dies, as it is a file lock)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / ".publish.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def check_newer(self, version: int) -> None:
        """Call under publishing(): raise IndexSuperseded when `version` is not newer than the live one."""
        try:
            live = self.read_pointer()
        except IndexUnavailable:
            return  # a broken pointer is replaced by any version
        if live is not None and int(live.get("version", -1)) >= version:
            raise IndexSuperseded(f"version {version} was not published: version {live['version']} is already live")

    def swap(self, pointer: dict) -> None:
        """Call under publishing(): point CURRENT.json at the new file (atomic rename)."""
        tmp = self.directory / f".{self.POINTER}.{os.getpid()}.{threading.get_ident()}.tmp"
        tmp.write_text(json.dumps(pointer))
        os.replace(tmp, self.pointer_path)

    def read_pointer(self) -> dict | None:
        try:
            return json.loads(self.pointer_path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise IndexUnavailable(f"{self.pointer_path} is unreadable: {exc}") from exc

    def load_current(self) -> tuple[VectorIndex, dict]:
        pointer = self.read_pointer()
        if pointer is None:
            raise IndexUnavailable(f"no index has been published in {self.directory} yet (run `manage.py reindex`)")
        index = VectorIndex.load(self.directory / pointer["file"], nprobe=int(pointer.get("nprobe") or 0))
        return index, pointer

    def _prune(self, *, keep: set[str]) -> None:
        files = sorted(self.directory.glob("index-*.faiss"))
        for old in files[:-2]:  # the newest two: the live one and the one before it
            if old.name not in keep:
                old.unlink(missing_ok=True)


class LiveIndex:
    """What a web process holds: the published index, reloaded when CURRENT.json changes.

    A stat() per query notices a new version; a failed reload keeps serving the old one.
    """

    def __init__(self, store: IndexStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._loaded: tuple[VectorIndex, dict] | None = None

    def get(self) -> tuple[VectorIndex, dict]:
        stamp = self._pointer_stamp()
        if stamp is not None and stamp == self._stamp and self._loaded is not None:
            return self._loaded
        with self._lock:
            if stamp != self._stamp or self._loaded is None:
                try:
                    self._loaded = self.store.load_current()
                    self._stamp = stamp
                    logger.info("loaded search index version %s (%d vectors)", self._loaded[1]["version"], len(self._loaded[0]))
                except IndexUnavailable:
                    if self._loaded is None:
                        raise
                    logger.exception("could not load the new index version; still serving version %s", self._loaded[1]["version"])
                    self._stamp = stamp
            return self._loaded

    def _pointer_stamp(self) -> tuple | None:
        try:
            st = self.store.pointer_path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)
