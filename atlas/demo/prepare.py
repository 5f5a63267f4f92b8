"""Make a local checkout ready to browse: what `make run` does before starting the server.

Every step checks what is already there, so the second run does almost nothing. The demo
models shipped in the repository are used when they were trained on exactly this data
(their data fingerprints match); otherwise they are trained here.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth import get_user_model

from atlas.models import Source
from atlas.services.credentials import demo_credentials_ensure

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-password"


def demo_prepare(*, say: Callable[[str], None], seed_images: Callable[[], None]) -> None:
    # Imported here: the catalogue app does not depend on the ML apps at import time.
    from generation.gating import gates_prepare
    from generation.quality import demo_classifier_ensure
    from generation.services import GanError, demo_checkpoint_ensure
    from search.indexing import index_rebuild
    from search.training import demo_model_ensure

    if Source.objects.filter(is_procedural=True, images__isnull=False).exists():
        say("demo atlas: already present")
    else:
        seed_images()
    say(demo_model_ensure())
    build = index_rebuild()
    say(f"search index: version {build.pk}, {build.vector_count} vectors ({build.embedded_count} newly embedded)")
    say(demo_checkpoint_ensure())
    say(demo_classifier_ensure())  # the real-only judge of GAN-test and the condition gate
    try:
        say(gates_prepare())  # the near-copy gate's encoder and index of real training crops
    except GanError as exc:  # no checkpoint: gap filling will say what to run
        say(f"gates: not ready ({exc})")
    say(demo_credentials_ensure())
    say(demo_user_ensure())


def demo_user_ensure() -> str:
    User = get_user_model()
    if User.objects.filter(username=DEMO_USERNAME).exists():
        return f"staff login: {DEMO_USERNAME} (exists)"
    User.objects.create_superuser(DEMO_USERNAME, email="", password=DEMO_PASSWORD)
    return f"staff login: created {DEMO_USERNAME} / {DEMO_PASSWORD} (local demo only)"
