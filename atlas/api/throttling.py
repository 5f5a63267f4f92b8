"""Per-client throttling in two windows: a short burst limit and a sustained (daily) one.

Requests with a token count against their client (all its tokens together), logged-in staff
against their user, anonymous requests against their address (atlas.clients: X-Forwarded-For
counts only as far as TRUSTED_PROXIES says) with lower rates. Rates are read at request time
from REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], so settings changes apply.

Searching by photo has its own scope on top (photo / anon_photo), counted once for the API and
the web page alike (`photo_search_wait` is the page's entry). Signing in and making an account
(the web pages and the admin's sign-in) are counted per address in their own scopes (sign_in,
sign_up), against password guessing and account floods (`account_wait`).
"""

from __future__ import annotations

from django.core.cache import caches
from django.http import HttpRequest
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from atlas.clients import client_address
from atlas.models import ApiToken


class _ClientThrottle(SimpleRateThrottle):
    client_scope = ""
    anonymous_scope = ""

    def __init__(self) -> None:  # the rate depends on the request: chosen in allow_request
        pass

    @property
    def cache(self):
        return caches["api"]

    def allow_request(self, request, view) -> bool:
        identified = isinstance(getattr(request, "auth", None), ApiToken) or request.user.is_authenticated
        self.scope = self.client_scope if identified else self.anonymous_scope
        self.rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_ident(self, request) -> str:
        return client_address(request)

    def get_cache_key(self, request, view) -> str:
        if isinstance(getattr(request, "auth", None), ApiToken):
            ident = f"client-{request.auth.client_id}"
        elif request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = f"addr-{self.get_ident(request)}"
        return f"throttle:{self.scope}:{ident}"


class BurstThrottle(_ClientThrottle):
    client_scope = "burst"
    anonymous_scope = "anon_burst"


class SustainedThrottle(_ClientThrottle):
    client_scope = "sustained"
    anonymous_scope = "anon_sustained"


class PhotoSearchThrottle(_ClientThrottle):
    client_scope = "photo"
    anonymous_scope = "anon_photo"


class SignInThrottle(_ClientThrottle):
    client_scope = anonymous_scope = "sign_in"

    def get_cache_key(self, request, view) -> str:  # per address even for a signed-in session
        return f"throttle:{self.scope}:addr-{self.get_ident(request)}"


class SignUpThrottle(SignInThrottle):
    client_scope = anonymous_scope = "sign_up"


def _wait(throttle: _ClientThrottle, request: HttpRequest) -> int | None:
    if throttle.allow_request(request, None):
        return None
    return max(1, round(throttle.wait() or 1))


def photo_search_wait(request: HttpRequest) -> int | None:
    """For the web photo search: None when allowed (and counted), else seconds to wait.
    Same scope and cache key as the API's photo search, so the two share one count."""
    return _wait(PhotoSearchThrottle(), request)


def account_wait(request: HttpRequest, *, sign_up: bool = False) -> int | None:
    """For a sign-in or sign-up attempt: None when allowed (and counted), else seconds to wait."""
    return _wait(SignUpThrottle() if sign_up else SignInThrottle(), request)
