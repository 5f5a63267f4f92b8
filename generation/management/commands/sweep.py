from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from generation.services import GanError, gan_sweep


class Command(BaseCommand):
    help = ("PNG grid of one map per condition swept over skin types (patent FIG 6) or lesion sizes (FIG 7). "
            "Needs an active GAN checkpoint (make run installs the shipped one); the real example of each row "
            "comes from the GAN training set when build_gan_dataset has run, else from the catalogue's regions.")

    def add_arguments(self, parser):
        parser.add_argument("--kind", choices=["skin-type", "size"], required=True)
        parser.add_argument("--condition", action="append", default=[], help="condition slug (repeatable)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--out", default="sweep.png", help="output PNG path")

    def handle(self, *args, kind, condition, seed, out, **options):
        try:
            path = gan_sweep(kind=kind, conditions=condition, seed=seed, out=Path(out))
        except GanError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{path} (rows and columns described in {path.with_suffix('.json')})")
