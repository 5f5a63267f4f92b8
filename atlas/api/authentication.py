"""`Authorization: Bearer <key>` (or `Token <key>`) for API clients' tokens."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from rest_framework import authentication, exceptions

from atlas.api.tokens import api_token_authenticate
from atlas.models import ApiToken


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """request.auth is the ApiToken; request.user its client's user (anonymous for read-only platforms)."""

    keywords = ("bearer", "token")

    def authenticate(self, request) -> tuple[object, ApiToken] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].decode("latin-1").lower() not in self.keywords:
            return None  # no token: anonymous, or the session (staff in the browser)
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Give exactly one token: 'Authorization: Bearer <key>'.", "invalid_token")
        token = api_token_authenticate(header[1].decode("latin-1"))
        if token is None:
            raise exceptions.AuthenticationFailed("The token is unknown, revoked or expired.", "invalid_token")
        user = token.client.user
        if user is None or not user.is_active:
            user = AnonymousUser()
        return user, token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'
