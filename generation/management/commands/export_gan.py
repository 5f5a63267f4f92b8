from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from generation.models import GanCheckpoint
from generation.services import GanError, gan_checkpoint_export


class Command(BaseCommand):
    help = "Write a small fp16 copy of a GAN checkpoint (default: the active one) with a JSON describing it."

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, help="output .pt path (a .json is written beside it)")
        parser.add_argument("--checkpoint", type=int, help="GanCheckpoint id (default: the active one)")
        parser.add_argument("--command", default="", help="the command that trained it, recorded in the JSON")
        parser.add_argument("--recalibrate-bn", type=int, default=0, metavar="BATCHES",
                            help="first average BatchNorm statistics over this many training batches (needs its training set built)")

    def handle(self, *args, out, checkpoint, command, recalibrate_bn, **options):
        try:
            row = GanCheckpoint.objects.get(pk=checkpoint) if checkpoint else None
            path = gan_checkpoint_export(out=Path(out), checkpoint=row, command=command, recalibrate_batches=recalibrate_bn)
        except GanCheckpoint.DoesNotExist:
            raise CommandError(f"no GAN checkpoint with id {checkpoint}") from None
        except GanError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{path} ({path.stat().st_size / 1e6:.1f} MB), described in {path.with_suffix('.json')}")
