from django.core.management.base import BaseCommand, CommandError

from search.errors import SearchUnavailable
from search.indexing import index_rebuild, reindex_job_create, reindex_job_resume, reindex_progress


class Command(BaseCommand):
    help = (
        "Embed new images, drop vectors of deleted/hidden ones and publish a new search index version. "
        "--distributed fans the embedding out over the Celery workers of the indexing queue in chunks."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--full", action="store_true", help="Rebuild the index from all stored vectors.")
        parser.add_argument(
            "--distributed", action="store_true",
            help="Queue a reindex job: one task per chunk of images, then one merge that publishes the index.",
        )  # fmt: skip
        parser.add_argument("--chunk-size", type=int, default=None, help="Images per chunk (default SEARCH_REINDEX_CHUNK_SIZE).")
        parser.add_argument("--resume", type=int, metavar="JOB", help="Queue again what a reindex job has not finished.")
        parser.add_argument("--status", type=int, metavar="JOB", help="Print a reindex job's progress.")

    def handle(self, *args, full: bool, distributed: bool, chunk_size, resume, status, **options) -> None:
        try:
            if status is not None:
                self.stdout.write(reindex_progress(job_id=status).line())
            elif resume is not None:
                job = reindex_job_resume(job_id=resume)
                self.stdout.write(reindex_progress(job_id=job.pk).line())
            elif distributed:
                job = reindex_job_create(full=full, chunk_size=chunk_size)
                self.stdout.write(reindex_progress(job_id=job.pk).line())
                self.stdout.write(f"follow it with: manage.py reindex --status {job.pk}")
            else:
                self._in_process(full=full, progress=options["verbosity"] >= 1)
        except SearchUnavailable as exc:
            raise CommandError(str(exc)) from None

    def _in_process(self, *, full: bool, progress: bool) -> None:
        build = index_rebuild(full=full, progress=progress)
        self.stdout.write(
            f"index version {build.pk}: {build.kind}, {build.vector_count} vectors "
            f"({'full' if build.full else 'incremental'}; embedded {build.embedded_count}, dropped {build.dropped_count}; "
            f"embed {build.embed_seconds:.1f}s, index {build.index_seconds:.1f}s) -> {build.path}"
        )
