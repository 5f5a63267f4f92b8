from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from generation.services import GanError, gan_checkpoint_register


class Command(BaseCommand):
    help = "Record a GAN checkpoint file made elsewhere (e.g. shipped in the repo), after checking it."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--activate", action="store_true")

    def handle(self, *args, path, activate, **options):
        try:
            row = gan_checkpoint_register(path=Path(path), activate=activate)
        except GanError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"checkpoint {row.pk}: {row.path} step {row.step}{' (active)' if row.is_active else ''}")
