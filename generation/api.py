"""The gap-filling API (staff): plan, start, watch and cancel generation jobs under /api/v1/generation/.

Thin views over generation.gaps: they check input with generation/serializers.py, call one
service and translate its domain errors (GapError) into the API's error shape. The shared
plumbing (authentication, error shape, pagination, throttling) comes from atlas/api; these URLs
are included into the `api` namespace by atlas/api/urls.py.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from atlas.api.errors import ApiError
from atlas.api.pagination import AtlasCursorPagination
from atlas.api.permissions import Staff
from atlas.api.serializers import ErrorSerializer, checked
from generation.gaps import GapError, JobNotActive, gap_plan, generation_job_cancel, generation_job_create, job_status
from generation.models import GenerationJob
from generation.serializers import (
    GapPlanSerializer,
    GapPolicySerializer,
    GenerationJobCreateSerializer,
    GenerationJobSerializer,
)


_CONFLICT = {409: OpenApiResponse(ErrorSerializer, description="Refused in the atlas's present state: no checkpoint, nothing to generate.")}


def _refused(exc: GapError) -> ApiError:
    """Input is checked by the serializers; what the service still refuses depends on the
    state of the atlas (no checkpoint, nothing left to generate, a job already over): 409."""
    if isinstance(exc, JobNotActive):
        return ApiError("not_active", str(exc), status=409)
    return ApiError("gap_refused", str(exc), status=409)


def _job_data(request: Request, job: GenerationJob) -> dict:
    url = request.build_absolute_uri(reverse("api:generation-job-detail", args=[job.pk]))
    return GenerationJobSerializer({**job_status(job), "url": url}).data


class GapPlanView(APIView):
    permission_classes = [Staff]

    @extend_schema(
        summary="Plan gap filling: the cells below target and what would be generated",
        parameters=[GapPolicySerializer],
        responses={200: GapPlanSerializer, **_CONFLICT},
    )
    def get(self, request: Request) -> Response:
        try:
            plan = gap_plan(policy=checked(GapPolicySerializer, request.query_params).policy())
        except GapError as exc:
            raise _refused(exc) from None
        body = {
            "checkpoint": str(plan.checkpoint) if plan.checkpoint else None,
            "total": plan.total,
            "cells": [cell.as_dict() for cell in plan.cells],
            "skipped": [cell.as_dict() for cell in plan.skipped],
        }
        return Response(GapPlanSerializer(body).data)


class GenerationJobListView(generics.ListAPIView):
    permission_classes = [Staff]
    pagination_class = AtlasCursorPagination
    queryset = GenerationJob.objects.all()
    serializer_class = GenerationJobSerializer

    def list(self, request: Request, *args, **kwargs) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([_job_data(request, job) for job in page])

    @extend_schema(summary="Gap-filling jobs, newest first")
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Start a gap-filling job (plan, then generate on the GPU queue)",
        request=GenerationJobCreateSerializer,
        responses={201: GenerationJobSerializer, **_CONFLICT},
    )
    def post(self, request: Request) -> Response:
        params = checked(GenerationJobCreateSerializer, request.data)
        data = params.validated_data
        try:
            job = generation_job_create(
                policy=params.policy(),
                requested_by=request.user,
                seed=data.get("seed"),
                batch_size=data.get("batch_size"),
                vary_size=data["vary_size"],
            )
        except GapError as exc:
            raise _refused(exc) from None
        job.refresh_from_db()
        return Response(_job_data(request, job), status=status.HTTP_201_CREATED)


class GenerationJobDetailView(APIView):
    permission_classes = [Staff]

    @extend_schema(summary="One gap-filling job with its progress per cell", responses=GenerationJobSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return Response(_job_data(request, get_object_or_404(GenerationJob, pk=pk)))


class GenerationJobCancelView(APIView):
    permission_classes = [Staff]

    @extend_schema(
        summary="Cancel a queued or running job (images already stored stay)",
        request=None,
        responses={200: GenerationJobSerializer, 409: OpenApiResponse(ErrorSerializer, description="Not active.")},
    )
    def post(self, request: Request, pk: int) -> Response:
        job = get_object_or_404(GenerationJob, pk=pk)
        try:
            job = generation_job_cancel(job=job, by=request.user)
        except GapError as exc:
            raise _refused(exc) from None
        return Response(_job_data(request, job))


# Included under /api/v1/generation/ in the `api` namespace (atlas/api/urls.py).
urlpatterns = [
    path("plan/", GapPlanView.as_view(), name="generation-plan"),
    path("jobs/", GenerationJobListView.as_view(), name="generation-job-list"),
    path("jobs/<int:pk>/", GenerationJobDetailView.as_view(), name="generation-job-detail"),
    path("jobs/<int:pk>/cancel/", GenerationJobCancelView.as_view(), name="generation-job-cancel"),
]
