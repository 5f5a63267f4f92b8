"""API tokens: created with a random key that is shown once; only its SHA-256 is stored.

The keys carry 256 random bits, so a plain SHA-256 (not a slow password hash) is enough to make
a leaked database useless, and it lets every request find its token with one indexed lookup.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from django.utils import timezone

from atlas.models import ApiClient, ApiToken

KEY_PREFIX = "atlas_"
# last_used_at is a convenience for curators; writing it on every request would cost a write each.
LAST_USED_RESOLUTION = timedelta(minutes=5)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_token_create(*, client: ApiClient, name: str = "", expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    """A new token for `client` and its key (the only time the key exists in clear)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        client=client, name=name, prefix=key[: len(KEY_PREFIX) + 6], key_hash=_hash(key), expires_at=expires_at
    )
    return token, key


def api_token_revoke(*, token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])


def api_token_authenticate(key: str) -> ApiToken | None:
    """The live token with this key (its client active, not revoked or expired), else None."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    token = ApiToken.objects.select_related("client", "client__user").filter(key_hash=_hash(key)).first()
    now = timezone.now()
    if token is None or not token.client.is_active or token.revoked_at is not None:
        return None
    if token.expires_at is not None and token.expires_at <= now:
        return None
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token
