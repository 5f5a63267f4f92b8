"""/api/v1/ (versioned endpoints), /api/schema/ (OpenAPI 3), /api/docs/ and /api/redoc/."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from atlas.api import decks, views

app_name = "api"

v1 = [
    path("conditions/", views.ConditionListView.as_view(), name="condition-list"),
    path("conditions/<slug:slug>/", views.ConditionDetailView.as_view(), name="condition-detail"),
    path("coverage/", views.CoverageView.as_view(), name="coverage"),
    path("licences/", views.LicenceListView.as_view(), name="licence-list"),
    path("images/", views.ImageListView.as_view(), name="image-list"),
    path("images/<uuid:public_id>/", views.ImageDetailView.as_view(), name="image-detail"),
    path("search/", views.SearchView.as_view(), name="search"),
    path("similar/<uuid:public_id>/", views.SimilarView.as_view(), name="similar"),
    path("uploads/", views.UploadView.as_view(), name="upload"),
    path("decks/audit/", decks.DeckAuditView.as_view(), name="deck-audit"),
    path("exports/", views.ExportListView.as_view(), name="export-list"),
    path("exports/<uuid:public_id>/", views.ExportDetailView.as_view(), name="export-detail"),
    path("exports/<uuid:public_id>/download/", views.ExportDownloadView.as_view(), name="export-download"),
    # The generation app owns its endpoints (generation/api.py); they keep the `api` namespace.
    path("generation/", include("generation.api")),
]

urlpatterns = [
    path("v1/", include(v1)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="redoc"),
]
