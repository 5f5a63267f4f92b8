from django.core.management.base import BaseCommand, CommandError

from search.errors import SearchUnavailable
from search.indexing import index_rebuild


class Command(BaseCommand):
    help = "Embed new images, drop vectors of deleted/hidden ones and publish a new search index version."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--full", action="store_true", help="Rebuild the index from all stored vectors.")

    def handle(self, *args, full: bool, **options) -> None:
        try:
            build = index_rebuild(full=full, progress=options["verbosity"] >= 1)
        except SearchUnavailable as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"index version {build.pk}: {build.kind}, {build.vector_count} vectors "
            f"({'full' if build.full else 'incremental'}; embedded {build.embedded_count}, dropped {build.dropped_count}; "
            f"embed {build.embed_seconds:.1f}s, index {build.index_seconds:.1f}s) -> {build.path}"
        )
