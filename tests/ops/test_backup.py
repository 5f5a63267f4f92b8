"""scripts/backup.sh and scripts/restore.sh: a restore on an empty machine answers the same.

Everything runs in subprocesses against real databases: SQLite files, or (when the suite runs
on PostgreSQL) two databases of the local server created for the test and dropped after.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.django_db]

SEED = """
from atlas.models import Condition, Source
from atlas.services.ingestion import image_ingest
from search.indexing import index_rebuild
from tests.conftest import make_image_bytes
source = Source.objects.create(name="Clinic", slug="clinic", licence="CC-BY-4.0")
for n, (slug, t) in enumerate([(s, t) for s in ("melanoma", "psoriasis", "tinea") for t in (1, 3, 5, 6)]):
    image_ingest(file=make_image_bytes(color=((n * 37) % 256, (n * 91) % 256, 90), seed=n, fmt="PNG"),
                 condition=Condition.objects.get(slug=slug), source=source, fitzpatrick_type=t, enqueue_followups=False)
index_rebuild(full=True)
"""
MIGRATE = """
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
"""
QUERY = """
import json
from search.query import search_text
r = search_text(query="psoriasis on dark skin", k=8)
s = search_text(query="scaly patch", k=8)
print("RESULT=" + json.dumps([r.index_version, [(str(h.image.public_id), round(h.score, 5)) for h in r.hits + s.hits]]))
"""


class Machine:
    """One deployment's environment: its own var dir, database and media."""

    def __init__(self, root: Path, database_url: str, clip: Path) -> None:
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))},
            "DJANGO_SETTINGS_MODULE": "atlas.settings.local",
            "ATLAS_VAR_DIR": str(root / "var"),
            "DATABASE_URL": database_url,
            "MEDIA_ROOT": str(root / "media"),
            "SEARCH_CLIP_MODEL": "atlas-clip-tiny",
            "SEARCH_CLIP_PRETRAINED": str(clip),
            "SEARCH_CLIP_DEVICE": "cpu",
            "SEARCH_FLOOR_TEXT": "0",  # a random model: its scores sit far below the shipped model's floor
            "CELERY_TASK_ALWAYS_EAGER": "true",
            "ATLAS_AFTER_INGEST_TASKS": "none.task",  # never used: seeding passes enqueue_followups=False
            "PY": sys.executable,
        }
        self.media = root / "media"

    def run(self, *command: str) -> str:
        result = subprocess.run(command, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def python(self, code: str) -> str:
        return self.run(sys.executable, "manage.py", "shell", "-c", code)

    def search(self) -> list:
        line = next(x for x in self.python(QUERY).splitlines() if x.startswith("RESULT="))
        return json.loads(line.removeprefix("RESULT="))


@pytest.fixture
def database_urls(tmp_path):
    if connection.vendor != "postgresql":
        yield f"sqlite:///{tmp_path / 'a' / 'var' / 'atlas.sqlite3'}", f"sqlite:///{tmp_path / 'b' / 'var' / 'atlas.sqlite3'}"
        return
    s = connection.settings_dict
    base = f"postgresql://{s['USER']}{':' + s['PASSWORD'] if s['PASSWORD'] else ''}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}"
    names = [f"atlas_ops_backup_{uuid.uuid4().hex[:8]}_{side}" for side in ("a", "b")]
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield tuple(f"{base}/{name}" for name in names)
    finally:
        with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
            for name in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_backup_then_restore_on_an_empty_machine_gives_the_same_search_results(tmp_path, database_urls, tiny_checkpoint):
    original = Machine(tmp_path / "a", database_urls[0], tiny_checkpoint)
    line = next(x for x in original.python(MIGRATE + SEED + QUERY).splitlines() if x.startswith("RESULT="))
    before = json.loads(line.removeprefix("RESULT="))
    assert before[0] != "exact-fallback" and len(before[1]) == 8 + 8  # psoriasis first (a boost, not a filter), then anything

    backup = tmp_path / "backup"
    original.run("scripts/backup.sh", str(backup))
    assert {"MANIFEST", "SHA256SUMS", "media.tar", "index.tar"} <= {p.name for p in backup.iterdir()}

    restored = Machine(tmp_path / "b", database_urls[1], tiny_checkpoint)
    assert not restored.media.exists()
    restored.run("scripts/restore.sh", str(backup))
    assert restored.search() == before  # same index version, same images, same scores
    assert len(list((restored.media / "images").rglob("*.png"))) == 12



def test_a_damaged_backup_is_refused(tmp_path, database_urls, tiny_checkpoint):
    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / "media.tar").write_bytes(b"x")
    (backup / "SHA256SUMS").write_text("0" * 64 + "  media.tar\n")
    target = Machine(tmp_path / "b", database_urls[1], tiny_checkpoint)
    result = subprocess.run(["scripts/restore.sh", str(backup)], cwd=ROOT, env=target.env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "checksums" in result.stderr


def test_restore_refuses_a_machine_with_data(tmp_path, source, melanoma, image_bytes):
    from atlas.ops.backup import backup_create, backup_restore
    from atlas.services.ingestion import image_ingest

    image_ingest(file=image_bytes(seed=1), condition=melanoma, source=source)
    with pytest.raises(FileExistsError, match="tables"):
        backup_restore(src=tmp_path)
    (tmp_path / "x").write_text("")
    with pytest.raises(FileExistsError, match="not empty"):
        backup_create(dest=tmp_path)


def test_media_load_refuses_a_non_empty_storage(tmp_path, source, melanoma, image_bytes):
    from atlas.ops.backup import media_dump, media_load, storage_walk
    from atlas.services.ingestion import image_ingest
    from django.core.files.storage import default_storage

    image = image_ingest(file=image_bytes(seed=1), condition=melanoma, source=source).image
    assert media_dump(out=tmp_path / "m.tar") == 2
    with pytest.raises(FileExistsError):
        media_load(archive_path=tmp_path / "m.tar")
    default_storage.delete(image.file.name)
    default_storage.delete(image.thumbnail.name)
    assert media_load(archive_path=tmp_path / "m.tar", force=True) == 2
    assert sorted(storage_walk(default_storage)) == sorted([image.file.name, image.thumbnail.name])


PASSWORD = "s3cr@t:pa/ss"  # every character that breaks a postgres:// URL


def test_database_credentials_go_through_the_environment_never_argv(tmp_path, monkeypatch):
    from atlas.ops import backup

    class PostgresConnection:
        vendor = "postgresql"
        settings_dict = {"NAME": "atlas", "USER": "atlas", "PASSWORD": PASSWORD, "HOST": "db.internal", "PORT": 5433,
                         "OPTIONS": {"sslmode": "require"}}

        def close(self) -> None:
            pass

    calls = []
    monkeypatch.setattr(backup, "connection", PostgresConnection())
    monkeypatch.setattr(backup.subprocess, "run", lambda command, **kw: calls.append((command, kw)))
    monkeypatch.setenv("PGPASSWORD", "someone-else's")
    assert backup._database_dump(tmp_path) == "db.pgdump"
    (tmp_path / "db.pgdump").write_bytes(b"")
    monkeypatch.setattr(backup, "_database_empty", lambda: True)
    monkeypatch.setattr(backup, "media_load", lambda **kw: 0)
    backup.backup_restore(src=tmp_path)
    assert [c[0][0] for c in calls] == ["pg_dump", "pg_restore"]
    for command, kwargs in calls:
        assert not any("s3cr" in part or "pa/ss" in part for part in command), command  # not visible in `ps`
        env = kwargs["env"]
        assert env["PGPASSWORD"] == PASSWORD and env["PGHOST"] == "db.internal" and env["PGPORT"] == "5433"
        assert env["PGUSER"] == "atlas" and env["PGDATABASE"] == "atlas" and env["PGSSLMODE"] == "require"
    assert "PGPASSWORD" not in backup.paths() and PASSWORD not in str(backup.paths())  # `ops_backup paths` prints it


@pytest.mark.postgres
def test_pg_dump_works_with_a_password_holding_url_characters(tmp_path, monkeypatch):
    from atlas.ops import backup

    s = connection.settings_dict
    admin_env = {k: v for k, v in backup.pg_environment().items() if k != "PGDATABASE"}
    role = f"atlas_backup_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dbname="postgres", autocommit=True, **{
        "host": admin_env.get("PGHOST", ""), "port": admin_env.get("PGPORT", ""), "user": s["USER"],
        "password": s["PASSWORD"] or None,
    }) as admin:  # committed at once: pg_dump connects on its own
        admin.execute(f"CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{PASSWORD}'")
        try:
            monkeypatch.setitem(s, "USER", role)
            monkeypatch.setitem(s, "PASSWORD", PASSWORD)
            assert backup._database_dump(tmp_path) == "db.pgdump"
            monkeypatch.undo()
            listing = subprocess.run(["pg_restore", "--list", str(tmp_path / "db.pgdump")], capture_output=True,
                                     text=True, check=True).stdout
            assert "TABLE DATA public atlas_source" in listing
        finally:
            admin.execute(f"DROP ROLE IF EXISTS {role}")
