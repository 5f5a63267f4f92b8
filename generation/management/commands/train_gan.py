from django.core.management.base import BaseCommand, CommandError

from generation import train as tr
from generation.services import GanError, gan_train


class Command(BaseCommand):
    help = "Train DermGAN on the current GAN training set (build_gan_dataset first)."

    def add_arguments(self, parser):
        parser.add_argument("--preset", choices=sorted(tr.PRESETS), default="fast", help="demo: the shipped 128 px model; fast: 64 px minutes; paper: 256 px for GPUs")
        parser.add_argument("--steps", type=int, help="total optimisation steps (default: the preset's)")
        parser.add_argument("--resume", action="store_true", help="continue the run from its last checkpoint")
        parser.add_argument("--run", help="run name (default: <preset>-<data fingerprint>)")
        parser.add_argument("--no-activate", action="store_true", help="do not make the last checkpoint active")
        parser.add_argument("--quiet", action="store_true", help="no progress bar")

    def handle(self, *args, preset, steps, resume, run, no_activate, quiet, **options):
        if steps is not None and steps < 1:
            raise CommandError("--steps must be at least 1")
        try:
            rows = gan_train(preset=preset, steps=steps, resume=resume, run=run, activate=not no_activate, progress=not quiet)
        except GanError as exc:
            raise CommandError(str(exc)) from exc
        for row in rows:
            self.stdout.write(f"checkpoint {row.pk}: {row.path} step {row.step} {row.metrics.get('losses', {})}")
        if rows and not no_activate:
            self.stdout.write(f"active: {rows[-1].path}")
