"""The vector index: one file per version, memory-mapped by every web process, plus a live loader.

Django-free. Vectors are L2-normalised float32 and compared by inner product (= cosine). Ids
are image ids. Two layouts, chosen by collection size (docs/benchmarks.md, "Index layouts",
has the measurements behind the choice):

- "flat": exact search over the stored vectors. Below `FLAT_MAX` vectors, where it costs
  about a millisecond.
- "ivf": IVF with an HNSW coarse quantizer (nlist ~ 4*sqrt(n) lists, so the share of the
  collection a query scans falls as it grows), 8-bit scalar-quantised codes in the lists
  (a quarter of the float32 bytes to scan), and the best `k * rerank` candidates re-ranked
  exactly against the stored float32 vectors. IVF keeps `remove_ids`, so an incremental
  reindex drops deleted images in place (HNSW cannot).

The file (see `save`): the FAISS index first, so FAISS maps it in place (IO_FLAG_MMAP_IFC),
then the sorted ids and their float32 vectors, then a JSON manifest (offsets, sizes, CRC-32
of every section) and a fixed footer. Web processes open it with `load(mmap=True)`: nothing
is copied, so every process on a host shares one copy in the page cache. A file that is
truncated or whose bytes do not match its CRCs is refused before FAISS reads it.

Filters are complete: a filtered query returns k results whenever k allowed ids are in the
index. Up to `EXACT_FILTER_MAX` allowed ids are ranked exactly (their vectors are gathered);
a wider filter runs inside FAISS (an id bitmap as SearchParameters.sel) with nprobe scaled by
the filter's selectivity, raised until enough candidates come back, and exact as a last step.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import mmap
import os
import struct
import threading
import time
import zlib
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import faiss
import numpy as np

logger = logging.getLogger(__name__)

FLAT_MAX = 50_000  # exact search below this many vectors
EXACT_FILTER_MAX = 50_000  # a filter allowing at most this many ids is ranked exactly
MIN_NPROBE = 16
RERANK = 4  # ivf: candidates re-ranked exactly per result asked for
HNSW_M = 32  # links per node of the coarse quantizer's graph
FORMAT = 2
_FOOTER = struct.Struct("<8sIIQQ")  # magic, format, manifest CRC-32, manifest offset, manifest length
_MAGIC = b"ATLASIDX"
_ALIGN = 64


def auto_nprobe(nlist: int) -> int:
    """Lists probed per query: 1/32 of them (at least 16). bench/bench_index.py, 1M clustered
    vectors, 4096 lists, SQ8 + re-ranking: recall@10 0.829 at nprobe 32, 0.911 at 64, 0.957 at
    128 (docs/benchmarks.md, "Index layouts")."""
    return max(MIN_NPROBE, nlist // 32)


class IndexUnavailable(RuntimeError):
    """The index file is missing, unreadable or corrupt; the message says which."""


class IndexSuperseded(RuntimeError):
    """A newer version is already live: an older build never replaces it."""


@dataclass(frozen=True)
class IndexSpec:
    kind: str  # "flat" | "ivf"
    nlist: int = 0  # ivf: number of inverted lists (k-means centroids)
    nprobe: int = MIN_NPROBE  # ivf: lists scanned per query before any filter escalation
    codes: str = "SQ8"  # ivf: what the lists hold, a FAISS factory string ("SQ8", "PQ32", "Flat")
    rerank: int = RERANK  # ivf: candidates per result re-ranked exactly (0: no re-ranking)


def choose_spec(n: int, *, flat_max: int = FLAT_MAX, nprobe: int = 0) -> IndexSpec:
    """nprobe 0 = auto_nprobe(nlist)."""
    if n < flat_max:
        return IndexSpec("flat")
    nlist = 2 ** round(math.log2(4 * math.sqrt(n)))
    nlist = int(min(65_536, max(256, nlist)))
    return IndexSpec("ivf", nlist=nlist, nprobe=nprobe or auto_nprobe(nlist))


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _unique(array: np.ndarray) -> np.ndarray:
    """Sorted distinct values. np.unique's hash path (numpy 2.4) took 1.5-3 s for 60k ids on the
    shared VM where a sort takes 0.3 ms (measured); a filter passes up to a million ids here."""
    array = np.sort(np.asarray(array, dtype=np.int64))
    return array[np.concatenate(([True], array[1:] != array[:-1]))] if len(array) else array


def _frozen(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False
    return view


class VectorIndex:
    """Sorted ids, their vectors (row i belongs to ids[i]) and, for "ivf", the FAISS index.

    Built or loaded with mmap=False it can be updated (add, remove) and saved; loaded with
    mmap=True it is read-only and shares the file's pages with every other process.
    """

    def __init__(self, spec: IndexSpec, ids: np.ndarray, vectors: np.ndarray, ivf: faiss.Index | None = None, *, mapped: bool = False) -> None:
        self.spec = spec
        self.dim = int(vectors.shape[1])
        self._ids = ids
        self._vectors = vectors
        self._ivf = ivf
        self.mapped = mapped

    # --- construction -----------------------------------------------------------------------

    @classmethod
    def empty(cls, dim: int, spec: IndexSpec) -> VectorIndex:
        if spec.kind not in ("flat", "ivf"):
            raise ValueError(f"unknown index kind {spec.kind!r}")
        ivf = _new_ivf(dim, spec) if spec.kind == "ivf" else None
        return cls(spec, np.zeros(0, dtype=np.int64), np.zeros((0, dim), dtype=np.float32), ivf)

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, *, spec: IndexSpec | None = None, seed: int = 0) -> VectorIndex:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vectors = normalise(vectors)
        if len(_unique(ids)) != len(ids):
            raise ValueError("duplicate ids in one build")
        spec = spec or choose_spec(len(ids))
        index = cls.empty(vectors.shape[1], spec)
        if spec.kind == "ivf":
            index._train(vectors, seed=seed)
        index.add(ids, vectors)
        return index

    def _train(self, vectors: np.ndarray, *, seed: int) -> None:
        nlist = self.spec.nlist
        # 32 points per list, 10 spherical k-means iterations. Up to 8192 lists each point is
        # compared with every centroid (BLAS, fast); above, it is assigned through an HNSW graph
        # of the centroids, since exact assignment grows with the number of lists.
        sample = min(len(vectors), 32 * nlist)
        if sample < nlist:
            raise ValueError(f"ivf with {nlist} lists needs at least that many vectors, got {len(vectors)}")
        rows = np.sort(np.random.default_rng(seed).choice(len(vectors), size=sample, replace=False))
        train = np.ascontiguousarray(vectors[rows])
        clustering = faiss.Clustering(self.dim, nlist)
        clustering.niter, clustering.seed, clustering.spherical = 10, seed, True
        clustering.max_points_per_centroid = 32
        if nlist <= 8192:
            assign = faiss.IndexFlatIP(self.dim)
        else:
            assign = faiss.IndexHNSWFlat(self.dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            assign.hnsw.efSearch = 32
        clustering.train(train, assign)
        centroids = faiss.vector_to_array(clustering.centroids).reshape(nlist, self.dim)
        quantizer = faiss.downcast_index(self._ivf.quantizer)
        quantizer.add(centroids)
        self._ivf.train(train)  # the codes (SQ ranges, PQ codebooks); the quantizer is already full

    # --- updates ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._ids)

    def ids(self) -> np.ndarray:
        """The sorted ids, read-only (a view of the file when memory-mapped)."""
        return _frozen(self._ids)

    def vector(self, image_id: int) -> np.ndarray | None:
        row = self._rows(np.array([image_id], dtype=np.int64))
        return None if row[0] < 0 else np.array(self._vectors[row[0]])

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self._writable()
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return
        vectors = normalise(vectors)
        if vectors.shape != (len(ids), self.dim):
            raise ValueError(f"expected {len(ids)} vectors of dim {self.dim}, got {vectors.shape}")
        if len(_unique(ids)) != len(ids):
            raise ValueError("duplicate ids in one add")
        self.remove(ids)  # re-adding an id replaces its vector instead of duplicating it
        if self._ivf is not None:
            faiss.downcast_index(self._ivf.quantizer).hnsw.efSearch = 32  # assignment to lists
            for start in range(0, len(ids), 200_000):
                self._ivf.add_with_ids(vectors[start : start + 200_000], ids[start : start + 200_000])
        all_ids = np.concatenate([self._ids, ids])
        order = np.argsort(all_ids, kind="stable")
        self._ids = all_ids[order]
        if len(self._vectors) == 0 and np.array_equal(order, np.arange(len(ids))):
            self._vectors = vectors  # a build from sorted ids: no second copy
        else:
            self._vectors = np.concatenate([self._vectors, vectors])[order]

    def remove(self, ids: Iterable[int]) -> int:
        self._writable()
        ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64)
        ids = _unique(ids)
        present = ids[self._rows(ids) >= 0]
        if len(present) == 0:
            return 0
        if self._ivf is not None:
            self._ivf.remove_ids(faiss.IDSelectorBatch(present))
        keep = ~np.isin(self._ids, present, assume_unique=True)
        self._ids, self._vectors = self._ids[keep], self._vectors[keep]
        return len(present)

    def _writable(self) -> None:
        if self.mapped:
            raise RuntimeError("a memory-mapped index is read-only: load it with mmap=False to update it")

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
            allowed = None
        else:
            allowed = _unique(np.asarray(list(allowed_ids) if not isinstance(allowed_ids, np.ndarray) else allowed_ids, dtype=np.int64))
            allowed = allowed[self._rows(allowed) >= 0]
            if len(allowed) == 0:
                return []
        if self._ivf is None or (allowed is not None and len(allowed) <= EXACT_FILTER_MAX):
            scores, ids = self._exact(query, k, allowed)
        else:
            scores, ids = self._approximate(query, k, allowed)
        return [(int(i), float(s)) for i, s in zip(ids, scores, strict=True) if i >= 0][:k]

    def _rows(self, ids: np.ndarray) -> np.ndarray:
        """Row of each id in the sorted ids, -1 where absent."""
        if len(self._ids) == 0:
            return np.full(len(ids), -1, dtype=np.int64)
        rows = np.minimum(np.searchsorted(self._ids, ids), len(self._ids) - 1)
        return np.where(self._ids[rows] == ids, rows, -1)

    def _exact(self, query: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if allowed is None:
            vectors, ids = self._vectors, self._ids
        else:
            rows = self._rows(allowed)
            vectors, ids = self._vectors[rows], allowed  # a copy of the allowed rows only
        scores, rows = faiss.knn(query, np.ascontiguousarray(vectors), min(k, len(ids)), metric=faiss.METRIC_INNER_PRODUCT)
        return scores[0], np.asarray(ids)[rows[0]]

    def _approximate(self, query: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        want = min(k, len(self) if allowed is None else len(allowed))
        fetch = max(k, k * self.spec.rerank)
        keep = None
        if allowed is None:
            selector, selectivity = None, 1.0
        else:
            selector, keep = _selector(allowed)  # FAISS reads `keep` (the bitmap) during the searches below
            selectivity = len(allowed) / len(self)
        nlist = self.spec.nlist
        # A filter keeping 10% of the vectors needs ~10x the lists for the same number of hits.
        nprobe = min(nlist, max(self.spec.nprobe, math.ceil(self.spec.nprobe / selectivity)))
        while True:
            params = faiss.SearchParametersIVF(sel=selector, nprobe=nprobe)
            params.quantizer_params = faiss.SearchParametersHNSW(efSearch=max(64, 2 * nprobe))
            scores, ids = self._ivf.search(query, fetch, params=params)
            found = ids[0][ids[0] >= 0]
            if len(found) >= want:
                return self._rerank(query, found, k) if self.spec.rerank else (scores[0], ids[0])
            if nprobe >= nlist // 4:
                # Hardly any allowed vector in the lists an HNSW walk reaches: rank exactly.
                return self._exact(query, k, allowed)
            nprobe = min(nlist, nprobe * 4)

    def _rerank(self, query: np.ndarray, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self._rows(candidates)
        candidates, rows = candidates[rows >= 0], rows[rows >= 0]
        scores = self._vectors[rows] @ query[0]
        order = np.argsort(-scores, kind="stable")[:k]
        return scores[order], candidates[order]

    def search_many(self, queries: np.ndarray, k: int, *, nprobe: int | None = None, rerank: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Unfiltered batch search (benchmarks, evaluation): (scores, ids) arrays of shape (n, k)."""
        queries = normalise(queries)
        if self._ivf is None:
            scores, rows = faiss.knn(queries, np.ascontiguousarray(self._vectors), k, metric=faiss.METRIC_INNER_PRODUCT)
            return scores, np.where(rows >= 0, self._ids[np.maximum(rows, 0)], -1)
        nprobe = nprobe or self.spec.nprobe
        rerank = self.spec.rerank if rerank is None else rerank
        params = faiss.SearchParametersIVF(nprobe=nprobe)
        params.quantizer_params = faiss.SearchParametersHNSW(efSearch=max(64, 2 * nprobe))
        scores, ids = self._ivf.search(queries, max(k, k * rerank), params=params)
        if not rerank:
            return scores[:, :k], ids[:, :k]
        out_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
        out_i = np.full((len(queries), k), -1, dtype=np.int64)
        for row, query in enumerate(queries):
            s, i = self._rerank(query[None, :], ids[row][ids[row] >= 0], k)
            out_s[row, : len(s)], out_i[row, : len(i)] = s, i
        return out_s, out_i

    # --- files ------------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write to a temp file in the same directory, then rename: readers see old or new, never half.

        Layout: [FAISS index][ids int64][vectors float32][manifest JSON][footer], sections
        aligned to 64 bytes; the manifest holds each section's offset, length and CRC-32.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            sections = {}
            if self._ivf is not None:
                faiss.write_index(self._ivf, str(tmp))
            else:
                tmp.write_bytes(b"")
            with open(tmp, "r+b") as handle:
                length = handle.seek(0, os.SEEK_END)
                sections["faiss"] = {"offset": 0, "length": length, "crc32": _crc32_file(handle, 0, length)}
                for name, array in (("ids", self._ids), ("vectors", self._vectors)):
                    offset = _pad(handle)
                    data = memoryview(np.ascontiguousarray(array)).cast("B")
                    handle.write(data)
                    sections[name] = {"offset": offset, "length": len(data), "crc32": zlib.crc32(data)}
                manifest = json.dumps({
                    "format": FORMAT,
                    "kind": self.spec.kind,
                    "count": len(self),
                    "dim": self.dim,
                    "nlist": self.spec.nlist,
                    "nprobe": self.spec.nprobe,
                    "codes": self.spec.codes,
                    "rerank": self.spec.rerank,
                    "sections": sections,
                }).encode()
                offset = _pad(handle)
                handle.write(manifest)
                handle.write(_FOOTER.pack(_MAGIC, FORMAT, zlib.crc32(manifest), offset, len(manifest)))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: Path, *, nprobe: int = 0, mmap: bool = True) -> VectorIndex:
        """Open a saved index; mmap=True shares the file's pages (read-only), mmap=False copies
        it into this process (to update it). nprobe 0 = the nprobe it was saved with.

        Refused (IndexUnavailable) when missing, truncated, or any section's CRC-32 differs:
        checked before FAISS reads a byte, since a damaged mapped file would crash the process.
        """
        path = Path(path)
        if not path.is_file():
            raise IndexUnavailable(f"index file {path} does not exist")
        try:
            manifest, mapped = _verified(path)
        except (OSError, ValueError, KeyError) as exc:
            raise IndexUnavailable(f"index file {path} is unreadable or corrupt: {exc}") from exc
        sections, count, dim = manifest["sections"], int(manifest["count"]), int(manifest["dim"])
        ids = np.frombuffer(mapped, dtype=np.int64, count=count, offset=sections["ids"]["offset"])
        vectors = np.frombuffer(mapped, dtype=np.float32, count=count * dim, offset=sections["vectors"]["offset"]).reshape(count, dim)
        if not mmap:
            ids, vectors = ids.copy(), vectors.copy()
        spec = IndexSpec(
            manifest["kind"],
            nlist=int(manifest["nlist"]),
            nprobe=nprobe or int(manifest["nprobe"]),
            codes=manifest["codes"],
            rerank=int(manifest["rerank"]),
        )
        ivf = None
        if spec.kind == "ivf":
            try:
                ivf = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC if mmap else 0)
            except RuntimeError as exc:
                raise IndexUnavailable(f"index file {path} is unreadable or corrupt: {str(exc).splitlines()[0]}") from exc
            if ivf.ntotal != count or ivf.d != dim:
                raise IndexUnavailable(f"index file {path} is inconsistent: FAISS holds {ivf.ntotal} x {ivf.d}, the manifest {count} x {dim}")
        elif spec.kind != "flat":
            raise IndexUnavailable(f"index file {path} holds an unknown layout {spec.kind!r}")
        return cls(spec, ids, vectors, ivf, mapped=mmap)

    def with_nprobe(self, nprobe: int) -> VectorIndex:
        return VectorIndex(replace(self.spec, nprobe=nprobe), self._ids, self._vectors, self._ivf, mapped=self.mapped)


def _new_ivf(dim: int, spec: IndexSpec) -> faiss.Index:
    """IVF over an empty HNSW graph of centroids (filled by _train) with the spec's codes."""
    quantizer = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    ip = faiss.METRIC_INNER_PRODUCT
    if spec.codes == "SQ8":
        ivf = faiss.IndexIVFScalarQuantizer(quantizer, dim, spec.nlist, faiss.ScalarQuantizer.QT_8bit, ip)
    elif spec.codes.startswith("PQ") and spec.codes[2:].isdigit():
        ivf = faiss.IndexIVFPQ(quantizer, dim, spec.nlist, int(spec.codes[2:]), 8, ip)
    elif spec.codes == "Flat":
        ivf = faiss.IndexIVFFlat(quantizer, dim, spec.nlist, ip)
    else:
        raise ValueError(f"unknown ivf codes {spec.codes!r} (SQ8, PQ<m> or Flat)")
    ivf.own_fields = True
    quantizer.this.disown()  # the IVF index owns its quantizer now
    return ivf


def _selector(allowed: np.ndarray):
    """An id filter for FAISS: a bitmap over ids (one bit per id up to the largest) when that is
    at most 16 MB, else a hash set. Returns (selector, the array it reads; keep it alive)."""
    top = int(allowed[-1]) + 1
    if top <= 8 * 16 * 2**20:
        mask = np.zeros(top, dtype=bool)
        mask[allowed] = True
        bits = np.packbits(mask, bitorder="little")
        return faiss.IDSelectorBitmap(len(bits), faiss.swig_ptr(bits)), bits  # n counts bytes, not bits
    return faiss.IDSelectorBatch(allowed), allowed


def _pad(handle) -> int:
    offset = handle.seek(0, os.SEEK_END)
    gap = -offset % _ALIGN
    handle.write(b"\0" * gap)
    return offset + gap


def _crc32_file(handle, offset: int, length: int) -> int:
    handle.seek(offset)
    crc, left = 0, length
    while left:
        block = handle.read(min(left, 1 << 24))
        if not block:
            raise OSError("file ended early")
        crc, left = zlib.crc32(block, crc), left - len(block)
    handle.seek(0, os.SEEK_END)
    return crc


def _verified(path: Path) -> tuple[dict, mmap.mmap]:
    """The manifest and a read-only map of the file, after checking footer, sizes and CRCs."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size < _FOOTER.size:
            raise ValueError(f"{size} bytes is too short for an index file")
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    magic, version, crc, offset, length = _FOOTER.unpack(mapped[size - _FOOTER.size :])
    if magic != _MAGIC:
        raise ValueError("no index footer: truncated, or written by an older version of the code (run `manage.py reindex --full`)")
    if version != FORMAT:
        raise ValueError(f"file format {version}, this code reads {FORMAT}")
    if offset + length > size - _FOOTER.size:
        raise ValueError("the manifest lies outside the file")
    raw = mapped[offset : offset + length]
    if zlib.crc32(raw) != crc:
        raise ValueError("the manifest's checksum does not match")
    manifest = json.loads(raw)
    count, dim = int(manifest["count"]), int(manifest["dim"])
    expected = {"ids": count * 8, "vectors": count * dim * 4}
    view = memoryview(mapped)
    for name, section in manifest["sections"].items():
        start, end = int(section["offset"]), int(section["offset"]) + int(section["length"])
        if end > offset or start < 0 or (name in expected and section["length"] != expected[name]):
            raise ValueError(f"section {name} does not fit the file")
        if zlib.crc32(view[start:end]) != int(section["crc32"]):
            raise ValueError(f"section {name} does not match its checksum")
    view.release()
    return manifest, mapped


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

    def load_current(self, *, mmap: bool = True) -> tuple[VectorIndex, dict]:
        """The live version: memory-mapped (shared, read-only) by default; mmap=False to update it."""
        pointer = self.read_pointer()
        if pointer is None:
            raise IndexUnavailable(f"no index has been published in {self.directory} yet (run `manage.py reindex`)")
        index = VectorIndex.load(self.directory / pointer["file"], nprobe=int(pointer.get("nprobe") or 0), mmap=mmap)
        return index, pointer

    def _prune(self, *, keep: set[str]) -> None:
        files = sorted(self.directory.glob("index-*.faiss"))
        for old in files[:-2]:  # the newest two: the live one and the one before it
            if old.name not in keep:
                old.unlink(missing_ok=True)


class LiveIndex:
    """What a web process holds: the published index, memory-mapped, reloaded when CURRENT.json changes.

    A stat() per query notices a new version; a failed reload (a missing, truncated or corrupt
    file) keeps serving the old one, whose mapping stays valid after its file is replaced or
    pruned (the inode lives while mapped).
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
