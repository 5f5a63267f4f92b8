from django.core.management.base import BaseCommand, CommandError

from generation.classifier import TrainingPlan
from generation.services import GanError
from generation.quality import TRAIN_COMMAND, condition_classifier_train


class Command(BaseCommand):
    help = (
        "Train the condition classifier on REAL images only (ROI windows like the GAN's crops; the GAN's "
        "held-out cases are held out here too) and install it. GAN-test (evaluate_gan --report) and the "
        "gap-filling condition gate use it. About 10 CPU-minutes at 64 px on the demo atlas."
    )

    def add_arguments(self, parser):
        defaults = TrainingPlan()
        parser.add_argument("--steps", type=int, default=defaults.steps, help=f"optimiser steps (default {defaults.steps})")
        parser.add_argument("--image-size", type=int, default=defaults.image_size, help=f"input side in pixels (default {defaults.image_size})")
        parser.add_argument("--crop-window", type=int, default=defaults.crop_window, help=f"ROI window in source pixels (default {defaults.crop_window})")
        parser.add_argument("--out", default="", help="write here instead of installing it (e.g. generation/demo_model/condition-classifier.pt)")

    def handle(self, *args, steps, image_size, crop_window, out, **options):
        if steps < 1 or not 32 <= image_size <= 512 or crop_window < 32:
            raise CommandError("--steps must be >= 1, --image-size 32-512, --crop-window >= 32")
        plan = TrainingPlan(steps=steps, image_size=image_size, crop_window=crop_window)
        command = " ".join([TRAIN_COMMAND, f"--steps {steps}", f"--image-size {image_size}", f"--crop-window {crop_window}"])
        try:
            result = condition_classifier_train(plan=plan, out=out or None, command=command, progress=self.stdout.write)
        except GanError as exc:
            raise CommandError(str(exc)) from exc
        held = result.held_out
        self.stdout.write(f"saved {result.path} ({result.classifier.meta['n_train']} real training crops, "
                          f"{result.classifier.meta['train_seconds']:.0f} s)")
        self.stdout.write(f"held-out real: top-1 {held['top1']}, top-3 {held['top3']} on {held['n']} images")
        for slug, row in held["per_condition"].items():
            self.stdout.write(f"  {slug:38} n {row['n']:4}  top-1 {row['top1']:.3f}  top-3 {row['top3']:.3f}")
