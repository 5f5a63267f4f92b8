"""Small template helpers for the atlas pages."""

from __future__ import annotations

from django import template
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from atlas.selectors import catalogue_has_procedural_images, skin_key
from atlas.skin import FITZPATRICK_SWATCH, roman

register = template.Library()


@register.filter(name="roman")
def roman_filter(skin_type: int | None) -> str:
    return roman(skin_type)


@register.filter
def swatch(skin_type: int | None) -> str:
    return FITZPATRICK_SWATCH.get(skin_type, "#c8c8c8")


@register.filter(name="skin_key")
def skin_key_filter(skin_type: int | None) -> str:
    return skin_key(skin_type)


@register.simple_tag
def optional_url(name: str, *args) -> str:
    """The URL named `name`, or "" while the app that provides it does not exist yet."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


@register.simple_tag
def browse_url(condition=None, skin_type: int | None | str = "", origin: str = "") -> str:
    """The search page filtered to one cell: condition x skin type (x origin)."""
    params = []
    if condition is not None:
        params.append(f"condition={condition.slug}")
    if skin_type != "":
        params.append(f"fitzpatrick={skin_key(skin_type)}")
    if origin:
        params.append(f"origin={origin}")
    return reverse("atlas:search") + ("?" + "&".join(params) if params else "")


@register.simple_tag(takes_context=True)
def query_with(context, **changes) -> str:
    """The current query string with some parameters replaced (for pagination links)."""
    request: HttpRequest = context["request"]
    query = request.GET.copy()
    for key, value in changes.items():
        query[key] = value
    return "?" + query.urlencode()


@register.simple_tag
def demo_data_note() -> bool:
    return catalogue_has_procedural_images()
