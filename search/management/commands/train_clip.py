import sys

from django.core.management.base import BaseCommand, CommandError

from search.errors import SearchUnavailable
from search.training import clip_model_train


class Command(BaseCommand):
    help = "Train the open_clip search model on the catalogue's images and metadata captions."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--preset", default="fast", choices=["fast", "full"])
        parser.add_argument("--epochs", type=int, default=None, help="Override the preset's epochs.")
        parser.add_argument("--out", default="", help="Checkpoint path (default: settings.SEARCH_CLIP_PRETRAINED).")
        parser.add_argument(
            "--init",
            default="",
            help="Start from this local open_clip checkpoint (fine-tuning a general model); its architecture is --model.",
        )
        parser.add_argument("--model", default="", help="open_clip model name (default: settings.SEARCH_CLIP_MODEL).")
        parser.add_argument("--device", default="", help="cpu (default) or cuda: fine-tuning a large checkpoint wants a GPU.")
        parser.add_argument(
            "--max-minutes", type=float, default=None, help="Wall-clock budget: the learning rate decays within it, then training stops."
        )
        parser.add_argument("--lr", type=float, default=None, help="Peak learning rate (default: the preset's; 1e-5 with --init).")
        parser.add_argument(
            "--text-only",
            action="store_true",
            help="Tune only the text tower of --init against its frozen image tower (image vectors stay as they are).",
        )
        parser.add_argument("--threads", type=int, default=None, help="Torch CPU threads (default: the preset's, 2).")

    def handle(
        self, *args, preset: str, epochs: int | None, out: str, init: str, model: str, lr: float | None, device: str,
        max_minutes: float | None, text_only: bool, threads: int | None, **options,
    ) -> None:
        command = "python manage.py train_clip " + " ".join(sys.argv[2:])
        try:
            result = clip_model_train(
                preset=preset, epochs=epochs, out=out, command=command.strip(), init=init, model_name=model, lr=lr, device=device,
                max_minutes=max_minutes, text_only=text_only, threads=threads,
            )
        except (SearchUnavailable, ValueError) as exc:
            raise CommandError(str(exc)) from None
        meta = result.metadata
        self.stdout.write(
            f"saved {result.checkpoint} ({meta['bytes'] / 1e6:.1f} MB, sha256 {meta['sha256'][:12]}): "
            f"{meta['train_images']} training images, {meta['heldout_images']} held out, "
            f"final loss {meta['epoch_losses'][-1]}, {meta['seconds']:.0f}s, {meta['cpu_seconds']:.0f} CPU-s"
            f"{', stopped early ' + meta['stopped_early'] if meta['stopped_early'] else ''}. Run `manage.py reindex --full` next."
        )
