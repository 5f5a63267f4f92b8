import sys

from django.core.management.base import BaseCommand, CommandError

from search.errors import SearchUnavailable
from search.training import clip_model_train


class Command(BaseCommand):
    help = "Train the small offline open_clip model on the catalogue's images and metadata captions."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--preset", default="fast", choices=["fast", "full"])
        parser.add_argument("--epochs", type=int, default=None, help="Override the preset's epochs.")
        parser.add_argument("--out", default="", help="Checkpoint path (default: settings.SEARCH_CLIP_PRETRAINED).")

    def handle(self, *args, preset: str, epochs: int | None, out: str, **options) -> None:
        command = "python manage.py train_clip " + " ".join(sys.argv[2:])
        try:
            result = clip_model_train(preset=preset, epochs=epochs, out=out, command=command.strip())
        except (SearchUnavailable, ValueError) as exc:
            raise CommandError(str(exc)) from None
        meta = result.metadata
        self.stdout.write(
            f"saved {result.checkpoint} ({meta['bytes'] / 1e6:.1f} MB, sha256 {meta['sha256'][:12]}): "
            f"{meta['train_images']} training images, {meta['heldout_images']} held out, "
            f"final loss {meta['epoch_losses'][-1]}, {meta['seconds']:.0f}s. Run `manage.py reindex --full` next."
        )
