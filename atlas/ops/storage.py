"""Local file storage that never leaves a partial file behind.

Django's FileSystemStorage creates the final file and then writes into it; when the disk fills
up half-way, the truncated file stays and nobody points at it (the caller only learns the name
on success). This one writes to a hidden temporary file beside the target first and renames it
into place, so a failed save leaves nothing, and a reader never sees half a file.
"""

from __future__ import annotations

import os
import tempfile

from django.core.files import File
from django.core.files.storage import FileSystemStorage as DjangoFileSystemStorage


class _Written(File):
    """A finished temporary file: Django's storage moves it (a rename) instead of copying."""

    def __init__(self, path: str) -> None:
        super().__init__(open(path, "rb"), name=os.path.basename(path))  # noqa: SIM115 - closed by the caller
        self._path = path

    def temporary_file_path(self) -> str:
        return self._path


class FileSystemStorage(DjangoFileSystemStorage):
    def _save(self, name: str, content) -> str:
        if hasattr(content, "temporary_file_path"):
            return super()._save(name, content)  # already a whole file: moved by rename
        directory = os.path.dirname(self.path(name))
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                if hasattr(content, "seek"):
                    content.seek(0)
                for chunk in content.chunks():
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            written = _Written(tmp)
            try:
                return super()._save(name, written)
            finally:
                written.close()
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def listdir(self, path: str) -> tuple[list[str], list[str]]:
        directories, files = super().listdir(path)
        return directories, [f for f in files if not (f.startswith(".") and f.endswith(".part"))]
