"""Each app owns its API: the gap-filling endpoints live in generation/api.py, and the catalogue's
API package (atlas/api) imports nothing of the generation app."""

from __future__ import annotations

import ast
from pathlib import Path

from django.urls import resolve

import atlas.api


def test_generation_endpoints_are_served_by_the_generation_app():
    for path in ("/api/v1/generation/plan/", "/api/v1/generation/jobs/", "/api/v1/generation/jobs/1/",
                 "/api/v1/generation/jobs/1/cancel/"):
        match = resolve(path)
        assert match.func.__module__ == "generation.api", path
        assert match.namespace == "api"


def test_the_catalogue_api_imports_nothing_of_the_generation_app():
    offenders = []
    for module in Path(atlas.api.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else (
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
            offenders += [f"{module.name}: {name}" for name in names if name.split(".")[0] == "generation"]
    assert offenders == []


def test_generation_services_raise_no_http_errors():
    import generation

    root = Path(generation.__file__).parent
    for name in ("gaps.py", "services.py"):
        text = (root / name).read_text()
        for marker in ("rest_framework", "django.http", "Http404", "ApiError"):
            assert marker not in text, f"{name} uses {marker}"


def test_catalogue_and_search_services_raise_no_http_errors():
    import atlas
    import search

    modules = [*(Path(atlas.__file__).parent / "services").glob("*.py")]
    modules += [Path(atlas.__file__).parent / name for name in ("selectors.py", "decks.py", "filters.py")]
    modules += [Path(search.__file__).parent / name for name in ("query.py", "indexing.py", "lookalikes.py")]
    offenders = [
        f"{module.name} uses {marker}"
        for module in modules
        for marker in ("rest_framework", "django.http", "Http404", "ApiError", "atlas.api")
        if marker in module.read_text()
    ]
    assert offenders == []
