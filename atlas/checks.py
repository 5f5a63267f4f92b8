"""System checks (`manage.py check`, runserver, migrate) for what settings alone cannot see."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security)
def c2pa_signing_check(app_configs, **kwargs) -> list[Error]:
    """A configured signing pair must really sign (the production settings already checked the files).

    The local demo pair is left alone: it is created on first use.
    """
    if settings.ATLAS_C2PA_DEMO_KEYS:
        return []
    from atlas.services.credentials import credentials_signing_problem

    problem = credentials_signing_problem()
    if not problem:
        return []
    return [
        Error(
            f"content credentials (C2PA) cannot be signed: {problem}",
            hint="Set ATLAS_C2PA_KEY_FILE and ATLAS_C2PA_CERT_FILE to a key and its CA-issued chain (docs/operations.md).",
            id="atlas.E001",
        )
    ]
