"""Where an image's two files live, and moving them when the image is published or hidden.

Public images:  images/<xx>/<token>.<ext>          thumbnails/<xx>/<token>.jpg
Hidden images:  private/images/<xx>/<token>.<ext>  private/thumbnails/<xx>/<token>.jpg

The web server (or the bucket) serves the public folders and never `private/`
(docs/operations.md); hidden files are served only through the authenticated view
(`atlas.web.views.image_file`). Tokens are random and never the public id, and every move picks
new ones, so no file name follows from anything else: not from an id, and a public name not
from the private name it had before. A database constraint (Image.Meta) keeps names and
`is_public` in step, so no code path can publish a row while its files stay private, or the
other way round.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from pathlib import PurePosixPath

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from atlas.models import PRIVATE_PREFIX, Image

logger = logging.getLogger(__name__)

KIND_FOLDERS = {"file": "images", "thumbnail": "thumbnails"}


def image_file_name(kind: str, extension: str, *, public: bool) -> str:
    """A fresh storage name for an image's `kind` ("file" or "thumbnail")."""
    token = secrets.token_hex(16)
    name = f"{KIND_FOLDERS[kind]}/{token[:2]}/{token}.{extension}"
    return name if public else PRIVATE_PREFIX + name


def is_private_name(name: str) -> bool:
    return name.startswith(PRIVATE_PREFIX)


def image_visibility_set(*, image: Image, is_public: bool) -> Image:
    """Publish or hide an image: its files move to the other side, then the row says so.

    The copies are written first; the row changes in one transaction (locked, so two curators
    cannot move it at once); the old files go once that commits. On any failure the copies are
    removed and the image stays as it was. Publishing enqueues the after-ingest tasks
    (embedding), like a new public image.
    """
    with transaction.atomic():
        current = Image.objects.select_for_update().get(pk=image.pk)
        if current.is_public == is_public:
            return current
        old = [current.file.name, current.thumbnail.name]
        copies: list[str] = []
        try:
            for kind, name in zip(KIND_FOLDERS, old, strict=True):
                copies.append(_copy(name, image_file_name(kind, _extension(name), public=is_public)))
            Image.objects.filter(pk=current.pk).update(file=copies[0], thumbnail=copies[1], is_public=is_public)
        except BaseException:
            delete_files(copies)
            raise
        # A rollback further out (an outer transaction) must not leave the row without its files:
        # the old files go only once the change is committed. Copies left by such a rollback
        # belong to no row; the daily orphan sweep removes them.
        transaction.on_commit(lambda: delete_files(old))
        if is_public:
            from atlas.services.ingestion import enqueue_after_ingest

            transaction.on_commit(lambda: enqueue_after_ingest(current.pk))
    current.refresh_from_db()
    return current


def delete_files(names: Iterable[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            logger.exception("could not remove %s", name)


def _copy(name: str, new_name: str) -> str:
    with default_storage.open(name, "rb") as handle:
        data = handle.read()
    return default_storage.save(new_name, ContentFile(data))


def _extension(name: str) -> str:
    return PurePosixPath(name).suffix.lstrip(".") or "bin"
