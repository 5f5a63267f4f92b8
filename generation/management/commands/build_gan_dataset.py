from django.core.management.base import BaseCommand, CommandError

from generation.services import GanError, gan_dataset_build


class Command(BaseCommand):
    help = "Cut ROI crops of real images (from sources allowing generative training) into the GAN training set."

    def add_arguments(self, parser):
        parser.add_argument("--window", type=int, help="crop side in pixels (default: GAN_CROP_SIZE)")
        parser.add_argument("--crops-per-image", type=int, help="random crops per image (default: GAN_CROPS_PER_IMAGE)")
        parser.add_argument("--window-tries", type=int,
                            help="random windows tried per crop, keeping the most skin-covered (default: GAN_WINDOW_TRIES)")
        parser.add_argument("--holdout", type=int, help="percent of cases held out for evaluation")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, window, crops_per_image, window_tries, holdout, seed, **options):
        try:
            result = gan_dataset_build(window=window, crops_per_image=crops_per_image, holdout_percent=holdout, seed=seed,
                                       window_tries=window_tries)
        except GanError as exc:
            raise CommandError(str(exc)) from exc
        verb = "reused" if result.reused else "built"
        self.stdout.write(
            f"{verb} {result.path}: {result.n_images} images -> {result.n_train} train / {result.n_eval} eval crops; "
            f"skipped {result.skipped}; fingerprint {result.fingerprint}"
        )
