"""OpenAPI generation: every operation documents the shared error shape and throttling."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import build_basic_type
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from django.db import DatabaseError
from rest_framework import permissions

from atlas.api.permissions import ReadOnly
from atlas.api.serializers import ErrorSerializer

_ERRORS = {
    "400": "Invalid input (code `invalid` with field errors in details, or a specific code).",
    "401": "The token is unknown, revoked or expired (or a token is needed).",
    "403": "Authenticated, but not allowed to do this.",
    "404": "No such resource.",
    "429": "Throttled: wait Retry-After seconds.",
}
_WRITE_ERRORS = {
    "413": "The body is over the upload limit (ATLAS_MAX_UPLOAD_BYTES): refused before it is read, or a file dropped as it came in.",
    "415": "Unsupported content type (use JSON or multipart/form-data).",
}


class AtlasAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        errors = {**_ERRORS, **(_WRITE_ERRORS if self.method in ("POST", "PUT", "PATCH") else {})}
        for code, description in errors.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(ErrorSerializer, description=description), code, media_types=["application/json"]
                )
        if "429" in responses:
            responses["429"].setdefault("headers", {})["Retry-After"] = {
                "schema": {"type": "integer"},
                "description": "Seconds until the client may call again.",
            }
        return responses


    def get_auth(self) -> list[dict]:
        """Operations anyone may call list `{}` (no credentials) beside the token and the session,
        so a client generated from the schema does not demand a token for public reads."""
        auths = super().get_auth()
        if self._anonymous_allowed() and {} not in auths:
            auths.append({})
        return auths

    def _anonymous_allowed(self) -> bool:
        checks = self.view.get_permissions()
        return all(
            isinstance(check, permissions.AllowAny)
            or (isinstance(check, ReadOnly) and self.method in permissions.SAFE_METHODS)
            for check in checks
        )


def _slug_enum(queryset) -> dict:
    """The slugs that exist when the schema is generated: any other is refused (400).
    Without a database (`manage.py spectacular` on a build machine) the slug pattern only."""
    try:
        return {**build_basic_type(OpenApiTypes.STR), "enum": list(queryset.order_by("slug").values_list("slug", flat=True))}
    except DatabaseError:
        return {**build_basic_type(OpenApiTypes.STR), "pattern": r"^[-a-zA-Z0-9_]+$", "minLength": 1, "maxLength": 64}


class ConditionSlugFieldExtension(OpenApiSerializerFieldExtension):
    target_class = "atlas.api.serializers.ConditionSlugField"

    def map_serializer_field(self, auto_schema, direction) -> dict:
        from atlas.models import Condition

        return _slug_enum(Condition.objects.public())


class SourceSlugFieldExtension(OpenApiSerializerFieldExtension):
    target_class = "atlas.api.serializers.SourceSlugField"

    def map_serializer_field(self, auto_schema, direction) -> dict:
        from atlas.models import Source

        return _slug_enum(Source.objects.all())


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "atlas.api.authentication.ApiTokenAuthentication"
    name = "ApiToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token created in the admin (API clients): `Authorization: Bearer atlas_...`.",
        }
