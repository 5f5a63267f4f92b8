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


class ReadOnly(permissions.BasePermission):
    """The default: GET, HEAD and OPTIONS for everyone, anonymous included."""

    def has_permission(self, request, view) -> bool:
        return request.method in permissions.SAFE_METHODS


class ClientOrStaff(permissions.BasePermission):
    """Any API client with a token, or a staff user (exports)."""

    def has_permission(self, request, view) -> bool:
        return has_client_token(request) or is_staff(request)


class Contributor(permissions.BasePermission):
    """Users with the 'contribute_images' permission (the Contributors group), and staff."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return is_staff(request) or bool(user and user.is_authenticated and user.has_perm(CONTRIBUTE_PERMISSION))


class Staff(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        return is_staff(request)
