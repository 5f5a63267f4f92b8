"""Start-up checks of the search app: the ONNX query towers must belong to the configured model.

`query_runtime_problem()` is called by gunicorn's master before any worker starts
(scripts/gunicorn.conf.py), so a web server with a stale export refuses to start with the
reason, and by `manage.py check --deploy`. Commands and workers are not blocked: they embed
with torch, and `search_export_onnx` (or train_clip, prepare_demo) writes a matching export.
"""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register

from search.onnx_runtime import onnx_export_problem


def query_runtime_problem() -> str:
    """Why web processes could not embed queries with the configured model ("" when they can,
    or when no checkpoint exists yet: search then says it is not ready, whatever the runtime)."""
    if settings.SEARCH_QUERY_RUNTIME != "onnx":
        return ""
    return onnx_export_problem(settings.SEARCH_CLIP_MODEL, str(settings.SEARCH_CLIP_PRETRAINED))


@register("search", deploy=True)
def query_runtime_check(app_configs, **kwargs) -> list[Error]:
    problem = query_runtime_problem()
    if not problem:
        return []
    return [
        Error(
            f"web processes cannot embed search queries: {problem}",
            hint="Run `python manage.py search_export_onnx` where torch is installed (docs/search.md).",
            id="search.E001",
        )
    ]
