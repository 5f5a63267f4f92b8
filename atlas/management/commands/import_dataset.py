"""python manage.py import_dataset FORMAT METADATA --images DIR [--source NAME] [--licence L] [--limit N]
[--create-unmapped-conditions]"""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from atlas.importers.registry import FORMATS
from atlas.services.imports import ImportFileError, dataset_import


class Command(BaseCommand):
    help = "Import a public skin-image dataset (or an Atlas manifest CSV) through the ingestion service."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("format", choices=list(FORMATS), help="metadata layout (see docs/importers.md)")
        parser.add_argument("metadata", type=Path, help="the dataset's metadata CSV (scin: scin_cases.csv)")
        parser.add_argument("--images", type=Path, required=True, help="folder holding the images (searched recursively)")
        parser.add_argument("--source", help="Source name to create or reuse (default: the dataset's name)")
        parser.add_argument("--licence", help="licence of a new source (default: the dataset's; required for manifest)")
        parser.add_argument(
            "--allow-generative-training", action="store_true", help="manifest only: the licence allows training the GAN"
        )
        parser.add_argument("--private", action="store_true", help="import the images as not public")
        parser.add_argument("--limit", type=int, help="import only the first N metadata rows")
        parser.add_argument(
            "--create-unmapped-conditions",
            action="store_true",
            help="import rows whose label no mapping covers under a new condition per label, hidden from the "
            "public until a curator accepts it or merges it into an existing one (admin: Conditions)",
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **options) -> None:
        # tqdm redraws with carriage returns; Django's OutputWrapper would add a newline to each.
        progress = None if options["no_progress"] else getattr(self.stderr, "_out", sys.stderr)
        try:
            report = dataset_import(
                format=options["format"],
                metadata_path=options["metadata"],
                images_dir=options["images"],
                source_name=options["source"],
                licence=options["licence"],
                allow_generative_training=options["allow_generative_training"],
                private=options["private"],
                limit=options["limit"],
                create_unmapped_conditions=options["create_unmapped_conditions"],
                progress=progress,
            )
        except ImportFileError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write("\n".join(report.summary_lines()))
