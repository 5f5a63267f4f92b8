"""The images list and the search answer built from plain values, without DRF's field machinery.

A page of 50 images through ImageSerializer cost about 0.3 ms of CPU per image: a model instance
(and its condition and source) per row, then one Field object call per attribute. Here a page
is one `.values()` query whose rows bring their boxes as JSON (atlas.selectors.RegionBoxes, as
search hits do), and each image is one dict built in Python; the shapes are ImageSerializer's
and SearchResultSerializer's exactly (the serializers stay the schema and the reference:
tests/api/test_payloads.py compares both on every variant).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import orjson
from django.core.files.storage import FileSystemStorage
from django.urls import reverse
from django.utils.encoding import filepath_to_uri
from django.utils.functional import LazyObject
from rest_framework import serializers

from atlas.licences import licence_get
from atlas.models import Image
from atlas.provenance import public_provenance

_PLACEHOLDER = "00000000-0000-0000-0000-000000000000"
# DRF's own representation (ISO 8601, "Z" for UTC, the current time zone), so dates match.
_DATETIME = serializers.DateTimeField()


class Links:
    """Absolute URLs for a page of images: reverse() and the host worked out once per request."""

    def __init__(self, request) -> None:
        self.root = request.build_absolute_uri("/")[:-1] if request is not None else ""
        self._api = self.root + reverse("api:image-detail", args=[_PLACEHOLDER])
        self._page = self.root + reverse("atlas:image_detail", args=[_PLACEHOLDER])
        self._storage = Image._meta.get_field("file").storage
        self._media_base = _plain_media_base(self._storage)
        self._licence_urls: dict[str, str | None] = {}

    def api(self, public_id: str) -> str:
        return self._api.replace(_PLACEHOLDER, public_id)

    def page(self, public_id: str) -> str:
        return self._page.replace(_PLACEHOLDER, public_id)

    def absolute(self, url: str) -> str:
        # Object stores (S3) hand out absolute, signed URLs already.
        return url if url.startswith(("http://", "https://")) else self.root + url

    def file(self, row: Mapping, kind: str) -> str:
        """Image.file_url / thumbnail_url from a row (the same rule: storage when public)."""
        if row["is_public"]:
            return self.absolute(self._storage_url(row[kind]))
        return self.absolute(reverse("atlas:image_file", args=[row["public_id"], kind]))

    def _storage_url(self, name: str) -> str:
        # FileSystemStorage.url is urljoin(base_url, quoted name): a third of a page's CPU for
        # two files per image. Joining is concatenation unless the name has dot segments or
        # empty ones (which urljoin rewrites); those, and every other storage, take storage.url.
        if self._media_base is not None:
            uri = filepath_to_uri(name).lstrip("/")
            if uri and "//" not in uri and not {".", ".."} & set(uri.split("/")):
                return self._media_base + uri
        return self._storage.url(name)

    def licence_url(self, licence: str) -> str | None:
        if licence not in self._licence_urls:
            found = licence_get(licence)
            self._licence_urls[licence] = found.url if found else None
        return self._licence_urls[licence]


def _plain_media_base(storage) -> str | None:
    """The base URL that FileSystemStorage.url joins names onto, when it is that method and a
    plain path or URL ending in "/"; None for any other storage (object stores sign URLs)."""
    if isinstance(storage, LazyObject):  # default_storage: the configured storage, built on first use
        storage.url  # noqa: B018 - builds it
        storage = storage._wrapped
    if not isinstance(storage, FileSystemStorage) or type(storage).url is not FileSystemStorage.url:
        return None
    base = storage.base_url
    if not base or not base.endswith("/") or {".", ".."} & set(base.split("/")):
        return None
    return base


def image_payload(row: Mapping, regions: Sequence[dict], links: Links) -> dict:
    """One image as ImageSerializer writes it, from a row of atlas.selectors.IMAGE_VALUES."""
    public_id = str(row["public_id"])
    synthetic = row["origin"] == Image.Origin.SYNTHETIC
    return {
        "public_id": public_id,
        "url": links.api(public_id),
        "page": links.page(public_id),
        "condition": {"slug": row["condition__slug"], "name": row["condition__name"]},
        "fitzpatrick_type": row["fitzpatrick_type"],
        "fitzpatrick_label_source": row["fitzpatrick_label_source"],
        "monk_tone": row["monk_tone"],
        "body_site": row["body_site"],
        "origin": row["origin"],
        "is_synthetic": synthetic,
        "review_state": row["review_state"],
        "source": {"slug": row["source__slug"], "name": row["source__name"], "url": row["source__url"]},
        "licence": row["licence"],
        "licence_url": links.licence_url(row["licence"]),
        "attribution": row["attribution"],
        "width": row["width"],
        "height": row["height"],
        "file": links.file(row, "file"),
        "thumbnail": links.file(row, "thumbnail"),
        "regions": list(regions),
        "provenance": public_provenance(row["provenance"]) if synthetic else None,
        "created_at": _DATETIME.to_representation(row["created_at"]),
    }


def image_rows_payload(rows: Sequence[Mapping], request) -> list[dict]:
    """A page of the images list from atlas.selectors.image_rows_matching rows (with their boxes)."""
    links = Links(request)
    return [image_payload(row, _boxes(row["region_boxes"]), links) for row in rows]


def _boxes(boxes_json: str) -> list[dict]:
    return [{"x": x, "y": y, "width": w, "height": h, "label": label} for x, y, w, h, label in orjson.loads(boxes_json)]


def image_row(image: Image) -> dict:
    """An Image instance (condition and source loaded) as a row of IMAGE_VALUES."""
    condition, source = image.condition, image.source
    return {
        "id": image.pk, "public_id": image.public_id, "file": image.file.name, "thumbnail": image.thumbnail.name,
        "is_public": image.is_public, "fitzpatrick_type": image.fitzpatrick_type,
        "fitzpatrick_label_source": image.fitzpatrick_label_source, "monk_tone": image.monk_tone,
        "body_site": image.body_site, "origin": image.origin, "review_state": image.review_state,
        "licence": image.licence, "attribution": image.attribution, "width": image.width, "height": image.height,
        "provenance": image.provenance, "created_at": image.created_at,
        "condition__slug": condition.slug, "condition__name": condition.name,
        "source__slug": source.slug, "source__name": source.name, "source__url": source.url,
    }  # fmt: skip


def search_payload(result, request) -> dict:
    """A search.query.SearchResult as SearchResultSerializer writes it; each hit's image carries
    its boxes (`region_boxes`, annotated by search.query)."""
    links = Links(request)

    def hits(found) -> list[dict]:
        return [
            {
                "score": float(hit.score),
                "boosted": bool(hit.boosted),
                "nearest_type": bool(hit.nearest_type),
                "image": image_payload(image_row(hit.image), _boxes(hit.image.region_boxes), links),
            }
            for hit in found
        ]

    meaning, chosen, gap = result.interpretation, result.filters, result.skin_type_gap
    return {
        "hits": hits(result.hits),
        "confident": bool(result.confident),
        "floor": None if result.floor is None else float(result.floor),
        "closest": hits(result.closest),
        "skin_type_gap": None if gap is None else {
            "conditions": [str(c) for c in gap.conditions],
            "requested": [int(t) for t in gap.requested],
            "nearest": [int(t) for t in gap.nearest],
        },
        "interpreted": {
            "conditions": [str(c) for c in meaning.conditions],
            "skin_types": [int(t) for t in meaning.skin_types],
            "terms": [str(t) for t in meaning.terms],
            "suggestion": str(meaning.suggestion),
            "only_skin_type": bool(meaning.only_skin_type),
        },
        "filters": {
            "conditions": [str(c) for c in chosen.conditions],
            "skin_types": [None if t is None else int(t) for t in chosen.skin_types],
            "origin": str(chosen.origin),
            "source": str(chosen.source),
            "licence": str(chosen.licence),
        },
        "model_version": str(result.model_version),
        "index_version": str(result.index_version),
        "fallback": str(result.fallback),
        "seconds": float(result.seconds),
    }
