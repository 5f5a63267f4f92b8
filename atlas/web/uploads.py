"""Search-by-photo uploads stay in memory: never a temporary file, never storage, never logged.

Django writes uploads over FILE_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) to a temporary file; a phone
photo is bigger than that. This handler keeps the whole upload in memory up to the ingestion
limit (ATLAS_MAX_UPLOAD_BYTES) and skips anything larger, so the view can say it was too large.
"""

from __future__ import annotations

from io import BytesIO

from django.conf import settings
from django.core.files.uploadedfile import InMemoryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile, StopFutureHandlers

# Room for the multipart envelope and the other fields around the photo.
ENVELOPE_BYTES = 64 * 1024


def photo_upload_limit() -> int:
    return settings.ATLAS_MAX_UPLOAD_BYTES


class InMemoryPhotoHandler(FileUploadHandler):
    """Collect the upload in a BytesIO; skip it (and remember why) once it passes the limit."""

    def __init__(self, request=None) -> None:
        super().__init__(request)
        self.too_large = False
        self.buffer: BytesIO | None = None

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self.buffer = BytesIO()
        raise StopFutureHandlers()  # no later handler may write it to disk

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        assert self.buffer is not None
        if start + len(raw_data) > photo_upload_limit():
            self.too_large = True
            self.buffer = BytesIO()
            raise SkipFile()
        self.buffer.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> InMemoryUploadedFile | None:
        if self.buffer is None:
            return None
        self.buffer.seek(0)
        # The client's file name and content type are not kept: neither is needed to search.
        return InMemoryUploadedFile(
            file=self.buffer, field_name=self.field_name, name="photo", content_type="application/octet-stream",
            size=file_size, charset=None,
        )  # fmt: skip
