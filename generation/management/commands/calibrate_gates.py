"""Measure what the copy and defect thresholds are set from: `calibrate_gates [--json]`."""

import json

from django.core.management.base import BaseCommand, CommandError

from generation.gating import gates_calibrate
from generation.services import GanError


class Command(BaseCommand):
    help = (
        "Nearest-neighbour encoder cosine and pHash distance of held-out real crops (distinct cases) to the "
        "training-side crops the near-copy gate compares with, the same for exact copies of training crops, and "
        "the defect statistics of real crops. generation/gate_calibration.py records the figures behind the defaults."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print the figures as JSON")
        parser.add_argument("--max-images", type=int, default=None, help="held-out images to use (default: all)")

    def handle(self, *args, **options) -> None:
        try:
            figures = gates_calibrate(progress=self.stderr.write, max_images=options["max_images"])
        except GanError as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps(figures, indent=1))
            return
        self.stdout.write(f"{figures['generator']}: {figures['window']} px windows at {figures['size']} px; "
                          f"encoder {figures['encoder']}; {figures['n_held_out']} held-out vs {figures['n_index']} indexed")
        for key in ("distinct_nearest_cosine", "distinct_nearest_hash_distance", "copy_nearest_cosine",
                    "copy_nearest_hash_distance"):
            self.stdout.write(f"  {key:34} {figures[key]}")
        for name, row in figures["defects"].items():
            self.stdout.write(f"  defect {name:27} {row}")
        self.stdout.write(f"  thresholds now: {figures['thresholds']}")
