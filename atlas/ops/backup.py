"""Backup helpers used by scripts/backup.sh and scripts/restore.sh.

Files are archived through Django's storage API, so the same commands back up local media
and an S3 bucket. The database is dumped by the scripts with the engine's own tools
(pg_dump/pg_restore, or SQLite's online backup API).
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.core.files.base import File
from django.core.files.storage import Storage, default_storage
from django.db import DatabaseError, connection


def storage_walk(storage: Storage, directory: str = "") -> Iterator[str]:
    """Every file name under a directory of the storage (recursively, sorted)."""
    try:
        folders, files = storage.listdir(directory)
    except FileNotFoundError:
        return
    prefix = f"{directory.rstrip('/')}/" if directory else ""
    for name in sorted(files):
        yield prefix + name
    for folder in sorted(folders):
        yield from storage_walk(storage, prefix + folder)


def media_dump(*, out: Path, storage: Storage | None = None) -> int:
    """Write every stored file into a tar archive; returns how many."""
    storage = storage or default_storage
    count = 0
    with tarfile.open(out, "w") as archive:
        for name in storage_walk(storage):
            with storage.open(name, "rb") as handle:
                data = handle.read()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
            count += 1
    return count


def media_load(*, archive_path: Path, storage: Storage | None = None, force: bool = False) -> int:
    """Put every file of the archive back under its own name; refuses a non-empty storage."""
    storage = storage or default_storage
    if not force and next(storage_walk(storage), None) is not None:
        raise FileExistsError("the media storage is not empty: restore into an empty one (or pass --force)")
    count = 0
    with tarfile.open(archive_path, "r") as archive:
        for member in archive:
            if not member.isfile() or member.name.startswith("/") or ".." in Path(member.name).parts:
                continue
            if storage.exists(member.name):
                storage.delete(member.name)
            saved = storage.save(member.name, File(archive.extractfile(member), name=member.name))
            if saved != member.name:
                raise OSError(f"{member.name} was stored as {saved}")
            count += 1
    return count


def sqlite_copy(*, source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite database (its online backup API, not a file copy)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def model_files() -> list[str]:
    """Model files the search and gap filling need, relative to VAR_DIR (those inside it)."""
    from generation.models import GanCheckpoint
    from generation.services import checkpoint_file

    from search.onnx_runtime import onnx_export_files

    candidates = [Path(settings.SEARCH_CLIP_PRETRAINED)]
    # The ONNX query towers beside it: a restored web host starts without re-exporting them.
    candidates += onnx_export_files(settings.SEARCH_CLIP_MODEL, str(settings.SEARCH_CLIP_PRETRAINED))
    try:
        candidates += [checkpoint_file(c) for c in GanCheckpoint.objects.all()]
    except DatabaseError:  # restore.sh asks before the database has tables
        pass
    var = Path(settings.VAR_DIR).resolve()
    found = []
    for path in candidates:
        path = path.resolve()
        if path.is_file() and path.is_relative_to(var):
            found.append(str(path.relative_to(var)))
    return sorted(set(found))


def pg_environment(db: dict | None = None) -> dict[str, str]:
    """The libpq variables for pg_dump/pg_restore: the password (and everything else) goes
    through the environment, never argv (visible in `ps`) or a URL (`@`, `:`, `/` break it).
    A libpq service file works too: OPTIONS["service"] becomes PGSERVICE."""
    db = db if db is not None else connection.settings_dict
    options = db.get("OPTIONS") or {}
    env = {
        "PGHOST": str(db.get("HOST") or ""),
        "PGPORT": str(db.get("PORT") or ""),
        "PGUSER": str(db.get("USER") or ""),
        "PGPASSWORD": str(db.get("PASSWORD") or ""),
        "PGDATABASE": str(db.get("NAME") or ""),
        "PGSERVICE": str(options.get("service") or ""),
        "PGPASSFILE": str(options.get("passfile") or ""),
        "PGSSLMODE": str(options.get("sslmode") or ""),
    }
    return {key: value for key, value in env.items() if value}


def _pg_run(command: list[str]) -> None:
    # PG* variables of our own environment are dropped first: only this database's count.
    base = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    subprocess.run(command, env={**base, **pg_environment()}, check=True)


def paths() -> dict[str, str]:
    db = connection.settings_dict
    info = {
        "DB_VENDOR": connection.vendor,
        "VAR_DIR": str(Path(settings.VAR_DIR).resolve()),
        "INDEX_DIR": str(Path(settings.SEARCH_INDEX_DIR).resolve()),
        "STORAGE_BACKEND": settings.STORAGE_BACKEND,
        "MODEL_FILES": " ".join(model_files()),
    }
    if connection.vendor == "sqlite":
        info["SQLITE_PATH"] = str(db["NAME"])
    else:  # never the password: this is printed
        info.update({k: v for k, v in pg_environment(db).items() if k != "PGPASSWORD"})
    return info


# --- whole backups (scripts/backup.sh, scripts/restore.sh) -----------------------------------


def _database_dump(dest: Path) -> str:
    if connection.vendor == "postgresql":
        _pg_run(["pg_dump", "--format=custom", "--no-owner", "--no-acl", "--file", str(dest / "db.pgdump")])
        return "db.pgdump"
    sqlite_copy(source=Path(connection.settings_dict["NAME"]), target=dest / "db.sqlite3")
    return "db.sqlite3"


def backup_create(*, dest: Path) -> list[str]:
    """Database first (files it names must be in the media archive taken after it), then media
    through the storage API, the served index, and model files under the var dir."""
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise FileExistsError(f"{dest} is not empty; use a new directory per backup")
    written = [_database_dump(dest)]
    media_dump(out=dest / "media.tar")
    written.append("media.tar")
    index_dir = Path(settings.SEARCH_INDEX_DIR)
    pointer = index_dir / "CURRENT.json"
    if pointer.is_file():
        live = json.loads(pointer.read_text())["file"]
        with tarfile.open(dest / "index.tar", "w") as archive:
            archive.add(pointer, arcname="CURRENT.json")
            archive.add(index_dir / live, arcname=live)
        written.append("index.tar")
    models = model_files()
    if models:
        with tarfile.open(dest / "models.tar", "w") as archive:
            for name in models:
                archive.add(Path(settings.VAR_DIR) / name, arcname=name)
        written.append("models.tar")
    return written


def _database_empty() -> bool:
    return not connection.introspection.table_names()


def backup_restore(*, src: Path) -> None:
    """Into an empty database and an empty storage only: a restore never merges."""
    if not _database_empty():
        raise FileExistsError("the database already has tables: restore into an empty one")
    if next(storage_walk(default_storage), None) is not None:
        raise FileExistsError("the media storage is not empty: restore into an empty one")
    if (src / "db.pgdump").is_file():
        if connection.vendor != "postgresql":
            raise ValueError("this backup holds a PostgreSQL dump; DATABASE_URL points elsewhere")
        connection.close()
        # --dbname is required for pg_restore to connect; its value comes from PGDATABASE.
        _pg_run(["pg_restore", "--no-owner", "--no-acl", "--exit-on-error", "--dbname",
                 connection.settings_dict["NAME"], str(src / "db.pgdump")])
    else:
        if connection.vendor != "sqlite":
            raise ValueError("this backup holds a SQLite database; DATABASE_URL points elsewhere")
        connection.close()
        sqlite_copy(source=src / "db.sqlite3", target=Path(connection.settings_dict["NAME"]))
    media_load(archive_path=src / "media.tar", force=True)
    for name, target in (("index.tar", Path(settings.SEARCH_INDEX_DIR)), ("models.tar", Path(settings.VAR_DIR))):
        if (src / name).is_file():
            target.mkdir(parents=True, exist_ok=True)
            with tarfile.open(src / name) as archive:
                archive.extractall(target, filter="data")
