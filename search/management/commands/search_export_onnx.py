from django.core.management.base import BaseCommand, CommandError

from search.errors import SearchUnavailable
from search.training import search_onnx_export


class Command(BaseCommand):
    help = (
        "Export the configured search model's image and text towers to ONNX beside its checkpoint: "
        "web processes embed queries with them, without torch (docs/search.md)."
    )
    requires_system_checks = []  # the check that fails when the export is missing must not block the fix

    def add_arguments(self, parser) -> None:
        parser.add_argument("--force", action="store_true", help="Export even when the files already belong to this checkpoint.")

    def handle(self, *args, force: bool, **options) -> None:
        try:
            report = search_onnx_export(force=force)
        except SearchUnavailable as exc:
            raise CommandError(str(exc)) from None
        if report is None:
            self.stdout.write("the ONNX query towers already belong to the configured checkpoint: nothing to do")
            return
        self.stdout.write(
            f"exported {report.model_version} to {report.paths['image']} and {report.paths['text']} in {report.seconds:.0f} s "
            f"(lowest cosine to torch: images {report.image_cosine:.5f}, texts {report.text_cosine:.5f})"
        )
