from django.urls import include, path

from generation import review_views, views

app_name = "generation"

urlpatterns = [
    path("fill-gaps/", views.fill_gaps, name="fill_gaps"),
    path("fill-gaps/jobs/<int:pk>/", views.job_detail, name="job_detail"),
    path("fill-gaps/jobs/<int:pk>/status.json", views.job_status_json, name="job_status"),
    path("fill-gaps/jobs/<int:pk>/cancel/", views.job_cancel, name="job_cancel"),
    path("review/", review_views.review_queue_page, name="review_queue"),
    path("review/decide/", review_views.review_decide, name="review_decide"),
    path("experiments/", include("generation.experiments.urls")),
]
