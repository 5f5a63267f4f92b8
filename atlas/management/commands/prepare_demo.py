"""Make a local checkout ready to browse: the demo atlas, a demo staff account, demo models.

Called by `make run` on every start; each step checks what is already there, so the
second run does almost nothing.
"""

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from atlas.models import Source

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-password"


class Command(BaseCommand):
    help = "Prepare the local demo: seed the demo atlas if the catalogue has none, create the demo staff login."

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG:
            raise CommandError("prepare_demo is for local mode only (DEBUG=True); it creates a known staff login")
        if Source.objects.filter(is_procedural=True, images__isnull=False).exists():
            self.stdout.write("demo atlas: already present")
        else:
            call_command("seed_demo", stdout=self.stdout, stderr=self.stderr)
        self._ensure_demo_user()

    def _ensure_demo_user(self) -> None:
        from django.contrib.auth import get_user_model

        User = get_user_model()
        if User.objects.filter(username=DEMO_USERNAME).exists():
            return
        User.objects.create_superuser(DEMO_USERNAME, email="", password=DEMO_PASSWORD)
        self.stdout.write(f"created local staff login {DEMO_USERNAME} / {DEMO_PASSWORD}")
