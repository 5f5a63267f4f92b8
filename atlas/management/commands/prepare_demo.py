"""Prepare the local demo (called by `make run`): demo atlas, demo models, index, staff login."""

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from atlas.demo.prepare import demo_prepare


class Command(BaseCommand):
    help = "Local mode only: seed the demo atlas, install or train the demo models, index, create the demo staff login."

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG:
            raise CommandError("prepare_demo is for local mode only (DEBUG=True): it creates a known staff login")
        demo_prepare(
            say=self.stdout.write,
            seed_images=lambda: call_command("seed_demo", stdout=self.stdout, stderr=self.stderr),
        )
