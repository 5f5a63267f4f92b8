"""Generate the procedural demo atlas (NOT clinical data) and store it through ingestion."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from atlas.demo.distribution import empty_cells
from atlas.demo.seed import DemoSeedError, demo_atlas_seed
from atlas.skin import roman


class Command(BaseCommand):
    help = (
        "Generate a deterministic procedural demo atlas of clinical-style skin photographs "
        "(NOT clinical data) and ingest it. The same --seed always gives the same images; "
        "re-running adds nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--images", type=int, default=3000, help="how many images (default 3000)")
        parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        parser.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
        parser.add_argument("--processes", type=int, default=2, help="rendering processes (default 2)")

    def handle(self, *args, images: int, seed: int, size: int, processes: int, **options) -> None:
        with tqdm(total=images, desc="seed_demo", unit="img", disable=None) as bar:
            try:
                summary = demo_atlas_seed(images=images, seed=seed, size=size, processes=processes, on_progress=bar.update)
            except DemoSeedError as exc:
                raise CommandError(str(exc)) from exc
        if summary.created == 0:
            self.stdout.write(
                f"demo atlas (seed {seed}): nothing added - all {summary.planned} images are already in the catalogue "
                f"({summary.already_present} skipped, {summary.duplicates} duplicate pixels)"
            )
        else:
            self.stdout.write(
                f"demo atlas (seed {seed}): added {summary.created} images, {summary.already_present} already present, "
                f"{summary.duplicates} duplicates, in {summary.seconds:.1f} s"
            )
            types = ", ".join(f"{roman(t)}: {summary.by_skin_type[t]}" for t in range(1, 7))
            self.stdout.write(f"  by Fitzpatrick type: {types}")
            self.stdout.write(f"  conditions: {len(summary.by_condition)}; empty by design: "
                              + ", ".join(f"{slug} {roman(t)}" for slug, t in empty_cells()))
        for message in summary.hook_messages:
            self.stdout.write(message)
        self.stdout.write("These are PROCEDURAL DEMO IMAGES, not clinical data.")
