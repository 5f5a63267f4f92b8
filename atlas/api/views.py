"""REST API views: parse and check input with a serializer, call one selector or service, answer.

Permissions: reads are open to everyone (default ReadOnly), search by photo too; uploads need
the contribute permission; exports need an API token (or staff). See atlas/api/permissions.py.
"""

from __future__ import annotations

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import prefetch_related_objects
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, permissions, status
from rest_framework.parsers import MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from atlas.api.errors import ApiError
from atlas.services.exports import export_job_create
from atlas.api.pagination import AtlasCursorPagination
from atlas.api.payloads import image_rows_payload, search_payload
from atlas.api.permissions import ClientOrStaff, Contributor, Staff, has_client_token, is_staff
from atlas.api.serializers import (
    ConditionDetailSerializer,
    ConditionSerializer,
    CoverageSerializer,
    ErrorSerializer,
    ExportCreateSerializer,
    ExportJobSerializer,
    ImageFilterSerializer,
    ImageSearchSerializer,
    ImageSerializer,
    LicenceSerializer,
    SearchParamsSerializer,
    SearchResultSerializer,
    TextSearchParamsSerializer,
    UploadResultSerializer,
    UploadSerializer,
    checked,
)
from atlas.api.throttling import PhotoSearchThrottle
from atlas.licences import LICENCES
from atlas.models import Condition, ExportJob, Image, Source
from atlas.selectors import coverage_matrix, image_for_detail, image_rows_matching, image_visible_to, images_matching
from atlas.services.ingestion import image_ingest
from atlas.uploads import too_large_message, upload_was_too_large
from search.query import SearchResult, search_image, search_similar, search_text

_SEARCH_UNAVAILABLE = {503: OpenApiResponse(ErrorSerializer, description="Search is not ready (no model or index).")}


def _upload_data(request: Request):
    """The parsed multipart body; 413 when a file passed the upload limit on the way in
    (a body declared too large never gets here: atlas.uploads.UploadLimitMiddleware)."""
    data = request.data
    if upload_was_too_large(request._request):
        raise ApiError("too_large", too_large_message(), status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    return data


# --- catalogue ------------------------------------------------------------------------------


class ConditionListView(APIView):
    @extend_schema(summary="Conditions with synonyms and image counts per skin type", responses=ConditionSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(ConditionSerializer(coverage_matrix().rows, many=True).data)


class ConditionDetailView(APIView):
    @extend_schema(
        summary="One condition with its teaching text (educational, not diagnostic) and image counts per skin type",
        responses=ConditionDetailSerializer,
    )
    def get(self, request: Request, slug: str) -> Response:
        condition = get_object_or_404(Condition.objects.public(), slug=slug)
        return Response(ConditionDetailSerializer(coverage_matrix(conditions=[condition]).rows[0]).data)


class CoverageView(APIView):
    @extend_schema(summary="Coverage matrix: real and synthetic images per condition and skin type", responses=CoverageSerializer)
    def get(self, request: Request) -> Response:
        return Response(CoverageSerializer(coverage_matrix().as_dict()).data)


class LicenceListView(APIView):
    @extend_schema(summary="Licences Atlas knows, with what each allows", responses=LicenceSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(LicenceSerializer(LICENCES.values(), many=True).data)


class ImageListView(generics.ListAPIView):
    serializer_class = ImageSerializer  # the schema; the answer is built from values (atlas/api/payloads.py)
    pagination_class = AtlasCursorPagination

    @extend_schema(summary="Public images, filtered, newest first (cursor pagination)", parameters=[ImageFilterSerializer])
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    def filters(self):
        return checked(ImageFilterSerializer, self.request.query_params).filters()

    def list(self, request: Request, *args, **kwargs) -> Response:
        rows = self.paginate_queryset(image_rows_matching(self.filters(), viewer=request.user))
        return self.get_paginated_response(image_rows_payload(rows, request))


class SerializerImageListView(ImageListView):
    """The images list as it was answered before payloads.py: model instances through
    ImageSerializer, DRF's JSON renderer. Not routed; the reference that tests and
    bench/bench_api_cpu.py compare the values-based answer with."""

    renderer_classes = [JSONRenderer]

    def get_queryset(self):
        return images_matching(self.filters(), viewer=self.request.user)

    def list(self, request: Request, *args, **kwargs) -> Response:
        return generics.ListAPIView.list(self, request, *args, **kwargs)


class ImageDetailView(APIView):
    @extend_schema(summary="One public image (staff: also one pending review)", responses=ImageSerializer)
    def get(self, request: Request, public_id) -> Response:
        image = image_for_detail(public_id, viewer=request.user)
        if image is None:
            raise ApiError("not_found", "No public image with this id.", status=404)
        return Response(ImageSerializer(image, context={"request": request}).data)


# --- search ---------------------------------------------------------------------------------


def _search_response(request: Request, result: SearchResult) -> Response:
    return Response(search_payload(result, request))


def _serializer_search_response(request: Request, result: SearchResult) -> Response:
    """The search answer as it was built before payloads.py (the reference for tests and the bench)."""
    prefetch_related_objects([hit.image for hit in result.hits + result.closest], "regions")
    return Response(SearchResultSerializer(result, context={"request": request}).data)


class SearchView(APIView):
    # Searching by photo is a read: open to everyone, like text search, with its own lower
    # rates on top (photo / anon_photo, shared with the web page's photo search).
    permission_classes = [permissions.AllowAny]
    parser_classes = [MultiPartParser]  # a file travels in multipart only

    def get_throttles(self):
        throttles = super().get_throttles()
        return [*throttles, PhotoSearchThrottle()] if self.request.method == "POST" else throttles

    @extend_schema(
        summary="Search by text",
        parameters=[TextSearchParamsSerializer],
        responses={200: SearchResultSerializer, **_SEARCH_UNAVAILABLE},
    )
    def get(self, request: Request) -> Response:
        params = checked(TextSearchParamsSerializer, request.query_params)
        data = params.validated_data
        result = search_text(query=data["q"], filters=params.filters(), k=data["k"], diversify=data["diversify"])
        return self.respond(request, result)

    def respond(self, request: Request, result: SearchResult) -> Response:
        return _search_response(request, result)

    @extend_schema(
        summary="Search by photo (multipart upload; the photo is not stored)",
        request=ImageSearchSerializer,
        responses={200: SearchResultSerializer, **_SEARCH_UNAVAILABLE},
    )
    def post(self, request: Request) -> Response:
        params = checked(ImageSearchSerializer, _upload_data(request))
        data = params.validated_data
        upload = data["image"].read(settings.ATLAS_MAX_UPLOAD_BYTES + 1)
        result = search_image(data=upload, filters=params.filters(), k=data["k"], diversify=data["diversify"])
        return self.respond(request, result)


class SerializerSearchView(SearchView):
    """Search answered through SearchResultSerializer and DRF's JSON renderer. Not routed; the
    reference that tests and bench/bench_api_cpu.py compare the plain answer with."""

    renderer_classes = [JSONRenderer]

    def respond(self, request: Request, result: SearchResult) -> Response:
        return _serializer_search_response(request, result)


class SimilarView(APIView):
    @extend_schema(
        summary="Images like this one",
        parameters=[SearchParamsSerializer],
        responses={200: SearchResultSerializer, **_SEARCH_UNAVAILABLE},
    )
    def get(self, request: Request, public_id) -> Response:
        image = image_for_detail(public_id)
        if image is None:
            raise ApiError("not_found", "No public image with this id.", status=404)
        params = checked(SearchParamsSerializer, request.query_params)
        data = params.validated_data
        result = search_similar(image=image, filters=params.filters(), k=data["k"], diversify=data["diversify"])
        return _search_response(request, result)


# --- uploads --------------------------------------------------------------------------------


class UploadView(APIView):
    permission_classes = [Contributor]
    parser_classes = [MultiPartParser]  # a file travels in multipart only

    @extend_schema(
        summary="Upload an image (contributors): stored through the one ingestion path",
        request=UploadSerializer,
        responses={
            201: OpenApiResponse(UploadResultSerializer, description="Stored."),
            200: OpenApiResponse(
                UploadResultSerializer,
                description="A duplicate: nothing stored, labels not applied; the existing image only if you may see it.",
            ),
        },
    )
    def post(self, request: Request) -> Response:
        data = checked(UploadSerializer, _upload_data(request)).validated_data
        condition = Condition.objects.public().filter(slug=data["condition"]).first()
        if condition is None:
            raise ApiError("unknown_condition", f"unknown condition {data['condition']} (see /api/v1/conditions/)")
        source = Source.objects.filter(slug=data["source"]).first()
        if source is None:
            raise ApiError("unknown_source", f"unknown source {data['source']}; a curator creates sources in the admin")
        result = image_ingest(
            file=data["file"],
            condition=condition,
            source=source,
            origin=Image.Origin.REAL,
            fitzpatrick_type=data.get("fitzpatrick_type"),
            fitzpatrick_label_source=data.get("fitzpatrick_label_source", ""),
            monk_tone=data.get("monk_tone"),
            body_site=data.get("body_site", ""),
            licence=data.get("licence", ""),
            attribution=data.get("attribution", ""),
            case_id=data.get("case_id", ""),
            external_id=data.get("external_id", ""),
            regions=data.get("regions", []),
            is_public=is_staff(request) or settings.API_CONTRIBUTOR_UPLOADS_PUBLIC,
        )
        if result.created:
            body = {"public_id": result.image.public_id, "duplicate": False, "labels_applied": True,
                    "message": "Stored.", "image": result.image}
            return Response(UploadResultSerializer(body, context={"request": request}).data, status=status.HTTP_201_CREATED)
        return Response(_duplicate_answer(request, result.image), status=status.HTTP_200_OK)


_DUPLICATE = "These pixels are already in the atlas: nothing was stored and the labels sent with them were not applied."


def _duplicate_answer(request: Request, existing: Image) -> dict:
    """The existing image only when the caller may see it (public, or staff); otherwise a
    neutral answer that names nothing about it: no id, source, attribution, licence or files."""
    if image_visible_to(request.user, existing):
        body = {"public_id": existing.public_id, "image": existing,
                "message": _DUPLICATE + " Ask a curator to correct the existing image's labels if they are wrong."}
    else:
        body = {"public_id": None, "image": None, "message": _DUPLICATE}
    body.update(duplicate=True, labels_applied=False)
    return UploadResultSerializer(body, context={"request": request}).data


# --- exports --------------------------------------------------------------------------------


def _exports_for(request: Request):
    jobs = ExportJob.objects.all()
    if is_staff(request):
        return jobs
    return jobs.filter(client=request.auth.client) if has_client_token(request) else jobs.none()


class ExportListView(generics.ListAPIView):
    permission_classes = [ClientOrStaff]
    serializer_class = ExportJobSerializer
    pagination_class = AtlasCursorPagination

    def get_queryset(self):
        return _exports_for(self.request)

    @extend_schema(summary="Your export jobs, newest first")
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Export a filtered set as a zip, leaving out images whose licence forbids the use",
        request=ExportCreateSerializer,
        responses={202: ExportJobSerializer},
    )
    def post(self, request: Request) -> Response:
        params = checked(ExportCreateSerializer, request.data)
        job = export_job_create(
            filters=params.filters(),
            commercial=params.validated_data["commercial"],
            derivatives=params.validated_data["derivatives"],
            client=request.auth.client if has_client_token(request) else None,
            requested_by=request.user,
        )
        job.refresh_from_db()  # an eager task (tests, local runs) may have finished it already
        return Response(ExportJobSerializer(job, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


class ExportDetailView(APIView):
    permission_classes = [ClientOrStaff]

    @extend_schema(summary="One export job: status, counts, images left out", responses=ExportJobSerializer)
    def get(self, request: Request, public_id) -> Response:
        job = get_object_or_404(_exports_for(request), public_id=public_id)
        return Response(ExportJobSerializer(job, context={"request": request}).data)


class ExportDownloadView(APIView):
    permission_classes = [ClientOrStaff]

    @extend_schema(
        summary="Download the export's zip",
        responses={
            (200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY, description="The zip."),
            409: OpenApiResponse(ErrorSerializer, description="The job has not succeeded (yet)."),
        },
    )
    def get(self, request: Request, public_id) -> FileResponse:
        job = get_object_or_404(_exports_for(request), public_id=public_id)
        if job.status != ExportJob.Status.SUCCEEDED or not job.file:
            raise ApiError("not_ready", f"The export is {job.status}; download it once it has succeeded.", status=409)
        handle = default_storage.open(job.file.name, "rb")
        return FileResponse(
            handle, as_attachment=True, filename=f"atlas-export-{job.public_id}.zip", content_type="application/zip"
        )
