from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from generation.services import GanError, images_generate


class Command(BaseCommand):
    help = ("Generate images of a condition on a skin type with the active GAN checkpoint (make run installs the "
            "shipped one; no training set needed). Each image of --count gets its own noise draw from --seed.")

    def add_arguments(self, parser):
        parser.add_argument("--condition", required=True, help="condition slug, e.g. melanoma")
        parser.add_argument("--skin-type", type=int, required=True, help="Fitzpatrick type 1-6")
        parser.add_argument("--size", type=float, default=0.4, help="lesion box side as a fraction of the image (0-1]")
        parser.add_argument("--location", type=float, nargs=2, default=(0.5, 0.5), metavar=("X", "Y"),
                            help="lesion centre as fractions of width and height")
        parser.add_argument("--count", type=int, default=1)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--out", required=True, help="output directory")

    def handle(self, *args, condition, skin_type, size, location, count, seed, out, **options):
        try:
            images = images_generate(condition=condition, skin_type=skin_type, size=size, location=tuple(location),
                                     count=count, seed=seed)
        except GanError as exc:
            raise CommandError(str(exc)) from exc
        out_dir = Path(out)
        out_dir.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(images):
            path = out_dir / f"{condition}-type{skin_type}-size{size:g}-seed{seed}-{i:03d}.png"
            image.save(path)
            self.stdout.write(str(path))
