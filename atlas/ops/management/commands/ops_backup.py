"""Backups (docs/operations.md): `ops_backup create DIR`, `ops_backup restore DIR`.

scripts/backup.sh and scripts/restore.sh wrap these; `paths` prints what a backup covers.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from atlas.ops import backup


class Command(BaseCommand):
    help = "create DIR | restore DIR | paths"

    def add_arguments(self, parser) -> None:
        parser.add_argument("action", choices=["create", "restore", "paths"])
        parser.add_argument("directory", nargs="?")

    def handle(self, *args, action: str, directory: str | None, **options) -> None:
        if action == "paths":
            for key, value in backup.paths().items():
                self.stdout.write(f"{key}={shlex.quote(value)}")
            return
        if not directory:
            raise CommandError(f"{action} needs a directory")
        try:
            if action == "create":
                written = backup.backup_create(dest=Path(directory))
                self.stdout.write(f"backup written to {directory}: {', '.join(written)}")
            else:
                backup.backup_restore(src=Path(directory))
                # A backup from older code gets the newer migrations; from the same code: nothing.
                call_command("migrate", interactive=False, verbosity=0)
                self.stdout.write(f"restored from {directory}")
        except (FileExistsError, FileNotFoundError, ValueError, subprocess.CalledProcessError) as exc:
            raise CommandError(str(exc)) from exc
