"""Make the automatic gates of gap filling ready: `prepare_gates` (prepare_demo runs it too)."""

from django.core.management.base import BaseCommand, CommandError

from generation.gating import gates_prepare
from generation.services import GanError


class Command(BaseCommand):
    help = (
        "Build what the near-copy gate compares samples with, for the active GAN checkpoint: the GAN report's "
        "crop encoder (trained on real training-side crops when missing) and the index of those crops' "
        "features and perceptual hashes. The condition gate's classifier comes from train_condition_classifier."
    )

    def handle(self, *args, **options) -> None:
        try:
            self.stdout.write(gates_prepare(progress=self.stdout.write))
        except GanError as exc:
            raise CommandError(str(exc)) from exc
