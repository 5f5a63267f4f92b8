from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path

from atlas import metrics
from atlas.ops import health
from atlas.web.accounts import attempts_counted

urlpatterns = [
    # The admin's sign-in shares the accounts pages' count of attempts per address.
    path("admin/login/", attempts_counted()(admin.site.login)),
    path("admin/", admin.site.urls),
    path("accounts/", include("atlas.web.accounts")),
    path("api/", include("atlas.api.urls")),
    path("generation/", include("generation.urls")),
    path("health/", health.health, name="health"),
    re_path(r"^health/live/?$", health.live, name="health_live"),  # the process answers
    re_path(r"^health/ready/?$", health.ready, name="health_ready"),  # the load balancer's probe
    path("metrics", metrics.metrics, name="metrics"),
    path("", include("atlas.web.urls")),
]

# JSON errors under /api/, the usual pages elsewhere.
handler400 = "atlas.api.errors.handler400"
handler403 = "atlas.api.errors.handler403"
handler404 = "atlas.api.errors.handler404"
handler500 = "atlas.api.errors.handler500"

if settings.DEBUG:
    from atlas.ops.private_files import public_media_patterns

    urlpatterns += public_media_patterns()
