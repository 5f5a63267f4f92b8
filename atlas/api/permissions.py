"""Who may do what: anyone reads public data; clients with a token export; contributors upload;
staff write everything else."""

from __future__ import annotations

from rest_framework import permissions

from atlas.models import ApiToken

CONTRIBUTE_PERMISSION = "atlas.contribute_images"


def is_staff(request) -> bool:
    return bool(request.user and request.user.is_authenticated and request.user.is_staff)


def has_client_token(request) -> bool:
    return isinstance(request.auth, ApiToken)


class _Permission(permissions.BasePermission):
    """Lets a method the view does not implement through, so everyone gets 405, not 401/403."""

    def has_permission(self, request, view) -> bool:
        if request.method.lower() not in view.http_method_names or not hasattr(view, request.method.lower()):
            return True
        return self.allows(request)

    def allows(self, request) -> bool:
        raise NotImplementedError


class ReadOnly(_Permission):
    """The default: GET, HEAD and OPTIONS for everyone, anonymous included."""

    def allows(self, request) -> bool:
        return request.method in permissions.SAFE_METHODS


class ClientOrStaff(_Permission):
    """Any API client with a token, or a staff user (exports)."""

    def allows(self, request) -> bool:
        return has_client_token(request) or is_staff(request)


class Contributor(_Permission):
    """Users with the 'contribute_images' permission (the Contributors group), and staff."""

    def allows(self, request) -> bool:
        user = request.user
        return is_staff(request) or bool(user and user.is_authenticated and user.has_perm(CONTRIBUTE_PERMISSION))


class Staff(_Permission):
    def allows(self, request) -> bool:
        return is_staff(request)
