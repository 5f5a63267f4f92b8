"""Upload bodies: refused before they are read when too large, kept in memory, never on disk.

One implementation for every path that takes a file (the web photo search, the API's uploads
and photo search, the admin's "add image"):

- `UploadLimitMiddleware` answers 413 from the Content-Length header alone, before anything
  (CSRF, a parser, a form) reads a byte of the body: JSON under /api/, the view's own page
  when it has one (`too_large_page`), plain text elsewhere.
- `LimitedMemoryUploadHandler` (the only entry of FILE_UPLOAD_HANDLERS) keeps each file in a
  BytesIO and stops collecting at ATLAS_MAX_UPLOAD_BYTES, remembering why; Django's default
  handlers would write anything over FILE_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) to a temporary file.
  A view calls `upload_was_too_large(request)` after the body is parsed to say so (413).

Under WSGI a body sent without a Content-Length (chunked) reads as empty in Django; the
handler's own limit is what holds for a length that understates a file.
"""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO

from django.conf import settings
from django.core.files.uploadedfile import InMemoryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile, StopFutureHandlers
from django.http import HttpRequest, HttpResponse, JsonResponse

# Room for the multipart envelope and the other fields around the file.
ENVELOPE_BYTES = 64 * 1024

TooLargePage = Callable[[HttpRequest], HttpResponse]


def upload_limit() -> int:
    return settings.ATLAS_MAX_UPLOAD_BYTES


def too_large_message() -> str:
    return f"The body is larger than the {upload_limit() / (1024 * 1024):g} MiB upload limit; nothing was read or kept."


def declared_too_large(request: HttpRequest) -> bool:
    """The Content-Length header says the body is over the limit (checked before any read)."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False  # Django reads such a body as empty
    return length > upload_limit() + ENVELOPE_BYTES


def upload_was_too_large(request: HttpRequest) -> bool:
    """After the body is parsed: a file passed the limit and was dropped while it streamed in."""
    return any(getattr(handler, "too_large", False) for handler in request.upload_handlers)


def too_large_page(page: TooLargePage) -> Callable:
    """Decorator: the view's own 413 answer, which the middleware uses instead of plain text."""

    def decorate(view):
        view.too_large_page = page
        return view

    return decorate


class UploadLimitMiddleware:
    """Put it before CsrfViewMiddleware: CSRF reads the form body of a POST."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        if not declared_too_large(request):
            return None
        page = getattr(view_func, "too_large_page", None)
        if page is not None:
            return page(request)
        if request.path.startswith("/api/"):
            from atlas.api.errors import error_body

            return JsonResponse(error_body(413, "too_large", too_large_message()), status=413)
        return HttpResponse(too_large_message(), status=413, content_type="text/plain; charset=utf-8")


class LimitedMemoryUploadHandler(FileUploadHandler):
    """Collect each uploaded file in a BytesIO; skip it (and remember why) once it passes the limit."""

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
        if start + len(raw_data) > upload_limit():
            self.too_large = True
            self.buffer = None
            raise SkipFile()
        self.buffer.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> InMemoryUploadedFile | None:
        if self.buffer is None:
            return None
        buffer, self.buffer = self.buffer, None
        buffer.seek(0)
        # The client's file name and content type are not kept: ingestion and search sniff the
        # bytes, and a name ("jane-doe-rash.jpg") must not reach a page or a log.
        return InMemoryUploadedFile(
            file=buffer, field_name=self.field_name, name="upload", content_type="application/octet-stream",
            size=file_size, charset=None,
        )  # fmt: skip
