from datetime import timedelta

from django.core.management.base import BaseCommand

from atlas.services.orphans import orphan_files_sweep


class Command(BaseCommand):
    help = "Delete stored image and thumbnail files that no Image row refers to (older than --older-than-minutes)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--older-than-minutes", type=int, default=60)
        parser.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")

    def handle(self, *args, older_than_minutes: int, dry_run: bool, **options) -> None:
        report = orphan_files_sweep(older_than=timedelta(minutes=max(0, older_than_minutes)), dry_run=dry_run)
        verb = "would remove" if dry_run else "removed"
        for name in report.removed:
            self.stdout.write(f"{verb} {name}")
        self.stdout.write(
            f"checked {report.checked} files: {verb} {len(report.removed)} orphans, "
            f"left {report.too_young} too recent to judge"
        )
