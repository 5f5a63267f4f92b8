"""Index distribution through Django's storage: build on a worker, serve on every web replica.

The worker that publishes an index version locally (IndexStore) also uploads it:
`<prefix>/index-000123.faiss`, then `<prefix>/index-000123.json` (its pointer plus size and
SHA-256). The JSON is written last, so it marks a complete upload. A web process lists the
JSON files, and fetches the newest version newer than its own: download to a temp file,
check size and hash, open it with FAISS, rename it into SEARCH_INDEX_DIR, then swap
CURRENT.json. LiveIndex notices the new pointer; until then, and whenever a download is
incomplete or corrupt, it keeps serving the version it has. A version it cannot read is
skipped for the next older one that is still newer than its own.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.storage import Storage, default_storage

from search.index import IndexStore, IndexSuperseded, IndexUnavailable, VectorIndex

logger = logging.getLogger(__name__)

KEEP_VERSIONS = 3  # in storage: the newest few, so a replica mid-download never loses its file
_META = re.compile(r"^index-(\d{6,})\.json$")
_CHUNK = 1 << 20


def _prefix() -> str:
    return settings.SEARCH_INDEX_STORAGE_PREFIX.strip("/")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _replace(storage: Storage, name: str, content: File) -> None:
    # Storages never overwrite (they pick another name), so remove first; version names are
    # unique, so this only happens when a failed upload of the same version is retried.
    if storage.exists(name):
        storage.delete(name)
    saved = storage.save(name, content)
    if saved != name:
        raise OSError(f"storage saved {name} as {saved}")


def index_upload(*, store: IndexStore, storage: Storage | None = None) -> dict:
    """Upload the store's current version (index file first, its JSON last); returns the JSON."""
    storage = storage or default_storage
    pointer = store.read_pointer()
    if pointer is None:
        raise IndexUnavailable(f"nothing published in {store.directory} to upload")
    path = store.directory / pointer["file"]
    meta = {**pointer, "size": path.stat().st_size, "sha256": _sha256(path), "object": f"{_prefix()}/{pointer['file']}"}
    with open(path, "rb") as handle:
        _replace(storage, meta["object"], File(handle, name=pointer["file"]))
    _replace(storage, f"{_prefix()}/index-{int(pointer['version']):06d}.json", ContentFile(json.dumps(meta).encode()))
    _prune_remote(storage)
    logger.info("uploaded search index version %s (%d bytes) to storage", pointer["version"], meta["size"])
    return meta


def remote_versions(*, storage: Storage | None = None) -> list[int]:
    """Versions whose upload completed, newest first."""
    storage = storage or default_storage
    try:
        _, files = storage.listdir(_prefix())
    except (FileNotFoundError, NotADirectoryError):
        return []
    versions = [int(m.group(1)) for name in files if (m := _META.match(name))]
    return sorted(versions, reverse=True)


def _prune_remote(storage: Storage) -> None:
    for version in remote_versions(storage=storage)[KEEP_VERSIONS:]:
        for suffix in ("json", "faiss"):  # the marker first: nobody starts a download of it now
            name = f"{_prefix()}/index-{version:06d}.{suffix}"
            try:
                storage.delete(name)
            except OSError:
                logger.warning("could not remove old index object %s", name)


def index_fetch(*, store: IndexStore, storage: Storage | None = None) -> int | None:
    """Install the newest readable version newer than the local one; its number, or None."""
    storage = storage or default_storage
    try:
        local = store.read_pointer()
    except IndexUnavailable:
        local = None
    current = int(local["version"]) if local else -1
    for version in remote_versions(storage=storage):
        if version <= current:
            return None
        try:
            _install(store, storage, version)
            return version
        except IndexSuperseded:  # a newer version went live here while this one downloaded
            return None
        except (OSError, ValueError, KeyError, IndexUnavailable) as exc:
            logger.warning("search index version %s in storage is not usable, trying an older one: %s", version, exc)
    return None


def index_fetch_quietly(*, store: IndexStore) -> None:
    """index_fetch for the builder: storage being down only means building from scratch."""
    try:
        index_fetch(store=store)
    except Exception:  # noqa: BLE001
        logger.warning("could not fetch the published index from storage; building from what is local", exc_info=True)


def _install(store: IndexStore, storage: Storage, version: int) -> None:
    with storage.open(f"{_prefix()}/index-{version:06d}.json", "rb") as handle:
        meta = json.loads(handle.read())
    store.directory.mkdir(parents=True, exist_ok=True)
    final = store.directory / meta["file"]
    tmp = store.directory / f".{meta['file']}.{os.getpid()}.{threading.get_ident()}.download"
    try:
        digest, size = hashlib.sha256(), 0
        with storage.open(meta["object"], "rb") as source, open(tmp, "wb") as target:
            for block in iter(lambda: source.read(_CHUNK), b""):
                digest.update(block)
                size += len(block)
                target.write(block)
            target.flush()
            os.fsync(target.fileno())
        if size != meta["size"] or digest.hexdigest() != meta["sha256"]:
            raise ValueError(f"download of version {version} is incomplete or corrupt ({size} of {meta['size']} bytes)")
        VectorIndex.load(tmp)  # FAISS can open it: only then does it replace anything
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    pointer = {key: value for key, value in meta.items() if key not in ("size", "sha256", "object")}
    with store.publishing():  # a local build may have published a newer version meanwhile
        store.check_newer(version)
        store.swap(pointer)
    store._prune(keep={final.name})
    logger.info("fetched search index version %s from storage", version)


# --- in web processes -----------------------------------------------------------------------

_sync_lock = threading.Lock()
_last_check = 0.0


def index_sync(*, store: IndexStore, wait: bool = False) -> None:
    """Called before a query: every SEARCH_INDEX_SYNC_SECONDS, look for a newer version.

    The download runs in a background thread so queries go on with the current version;
    only a process with no index at all waits for it (`wait`, or nothing local yet).
    """
    global _last_check
    if not settings.SEARCH_INDEX_PUBLISH:
        return
    now = time.monotonic()
    if not wait and now - _last_check < settings.SEARCH_INDEX_SYNC_SECONDS:
        return
    if not _sync_lock.acquire(blocking=wait):
        return  # another thread is fetching
    _last_check = now
    if wait or not store.pointer_path.exists():
        try:
            _fetch_logged(store)
        finally:
            _sync_lock.release()
        return
    threading.Thread(target=_fetch_then_release, args=(store,), daemon=True, name="index-sync").start()


def _fetch_then_release(store: IndexStore) -> None:
    try:
        _fetch_logged(store)
    finally:
        _sync_lock.release()


def _fetch_logged(store: IndexStore) -> None:
    try:
        index_fetch(store=store)
    except Exception:  # noqa: BLE001 - storage down: keep serving what we have
        logger.exception("could not check storage for a newer search index")


def reset() -> None:
    global _last_check
    _last_check = 0.0
