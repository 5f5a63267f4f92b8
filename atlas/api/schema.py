"""OpenAPI generation: every operation documents the shared error shape and throttling."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse

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


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "atlas.api.authentication.ApiTokenAuthentication"
    name = "ApiToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token created in the admin (API clients): `Authorization: Bearer atlas_...`.",
        }
