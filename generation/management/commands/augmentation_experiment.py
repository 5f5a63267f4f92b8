import shlex
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from generation.experiments.augmentation import ExperimentError
from generation.experiments.augmentation_study import augmentation_experiment_run


class Command(BaseCommand):
    help = ("Classifier augmentation study: MobileNet on the real training split (baseline) vs real + synthetic "
            "(augmented), same budget, scored on the same real test split (split by case).")

    def add_arguments(self, parser):
        parser.add_argument("--preset", choices=["fast", "full"], default="fast")
        parser.add_argument("--out", type=Path, help="report directory (default: VAR_DIR/experiments/augmentation)")
        parser.add_argument("--generate", type=int, default=0, metavar="N",
                            help="generate N synthetic training images with the active checkpoint from training-split "
                                 "maps (default: use the catalogue's synthetic images)")
        parser.add_argument("--weights", default="", help="local mobilenet_v3_small weights file (default: from scratch)")
        parser.add_argument("--epochs", type=int, help="passes over the real training split (default: the preset's)")
        parser.add_argument("--image-size", type=int, help="classifier input side in pixels (default: the preset's)")
        parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--quiet", action="store_true")

    def handle(self, *args, preset, out, generate, weights, epochs, image_size, threads, seed, quiet, **options):
        if generate < 0 or (epochs is not None and epochs < 1) or (image_size is not None and not 32 <= image_size <= 512):
            raise CommandError("--generate must be >= 0, --epochs >= 1, --image-size 32-512")
        overrides = {"weights": weights, "threads": threads, "seed": seed}
        if epochs is not None:
            overrides["epochs"] = epochs
        if image_size is not None:
            overrides["image_size"] = image_size
        out = out or Path(settings.VAR_DIR) / "experiments" / "augmentation"
        try:
            path = augmentation_experiment_run(
                out=out, preset=preset, generate=generate, overrides=overrides,
                command="python manage.py augmentation_experiment " + shlex.join(sys.argv[2:]),
                progress=None if quiet else self.stdout.write,
            )
        except ExperimentError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"report: {path}")
