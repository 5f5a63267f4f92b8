"""The values-based images list and plain search answer (atlas/api/payloads.py, orjson) give the
same JSON as the serializers they replace (kept as SerializerImageListView and
SerializerSearchView), on the demo atlas, for every query-parameter variant that changes what
is shown: filters, pagination, synthetic fields, roles (visibility)."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIRequestFactory

from atlas.api.views import SerializerImageListView, SerializerSearchView
from atlas.models import Image, Region
from tests.conftest import make_image_bytes

pytestmark = pytest.mark.django_db

LIST = "/api/v1/images/"
SEARCH = "/api/v1/search/"


@pytest.fixture
def demo_atlas(search_settings, add_image, api_client_for):
    """The demo atlas (seed_demo) plus what it lacks: approved and pending synthetic images with
    a server path in their provenance, a hidden image, unknown skin type, a labelled box; indexed."""
    from search import indexing

    call_command("seed_demo", "--images", "48", "--seed", "5", stdout=io.StringIO())
    synthetic = add_image("psoriasis", skin_type=6, origin="synthetic")
    Image.objects.filter(pk=synthetic.pk).update(
        provenance={"model": "dermgan", "checkpoint_path": "/srv/atlas/var/gan/ckpt.pt", "seed": 7,
                    "gate": {"skin": True, "files": ["/srv/x/map.png"]}})  # fmt: skip
    add_image("psoriasis", skin_type=5, origin="synthetic", reviewed=False)  # staff only
    add_image("melanoma", skin_type=None)
    add_image("melanoma", skin_type=4, is_public=False)  # nobody, through the API list
    Region.objects.create(image=synthetic, x=1, y=2, width=10, height=12, label="plaque “é”\u2028")
    indexing.index_rebuild()
    return {role: api_client_for(role) for role in ("anonymous", "staff")}


def _legacy(view, path: str, params: dict, client) -> tuple[int, bytes]:
    """The same request answered by the serializer-based view (not routed)."""
    request = APIRequestFactory().get(path, params, **client._credentials)
    response = view.as_view()(request)
    response.render()
    return response.status_code, response.content


LIST_VARIANTS = [
    {},
    {"page_size": "7"},
    {"page_size": "1"},
    {"condition": "psoriasis", "fitzpatrick": ["5", "6"]},
    {"condition": "psoriasis,melanoma"},
    {"fitzpatrick": "unknown"},
    {"origin": "synthetic"},
    {"origin": "real", "page_size": "5"},
    {"source": "test-clinic"},
    {"licence": "cc-by-4.0"},
    {"condition": "no-such-condition"},  # 400, the same error
    {"page_size": "0"},  # 400
    {"cursor": "garbage"},  # 400
]


# One test walks every variant: seeding the demo atlas is the slow part.
def test_the_images_list_is_the_serializers_json(demo_atlas):
    for role, client in demo_atlas.items():
        for variant in LIST_VARIANTS:
            params, pages = dict(variant), 0
            while True:
                new = client.get(LIST, params)
                status, old = _legacy(SerializerImageListView, LIST, params, client)
                assert new.status_code == status, (role, params)
                assert json.loads(new.content) == json.loads(old), (role, params)
                assert new.content == old, (role, params)  # byte for byte: no float in the list
                if status != 200:
                    break
                pages += 1
                following = new.json()["next"]
                if following is None or pages == 3:  # the first pages and their links are enough
                    break
                params = {**params, "cursor": following.split("cursor=")[1].split("&")[0]}


def test_the_list_shows_synthetic_fields_and_staff_see_pending(demo_atlas):
    anonymous = demo_atlas["anonymous"].get(LIST, {"origin": "synthetic"}).json()["results"]
    staff = demo_atlas["staff"].get(LIST, {"origin": "synthetic"}).json()["results"]
    assert [i["review_state"] for i in anonymous] == ["approved"] and len(staff) == 2
    shown = anonymous[0]
    assert shown["is_synthetic"] is True and shown["provenance"]["model"] == "dermgan"
    assert "checkpoint_path" not in shown["provenance"] and shown["provenance"]["gate"]["files"] == ["map.png"]
    assert shown["regions"] == [{"x": 1, "y": 2, "width": 10, "height": 12, "label": "plaque “é”\u2028"}]
    hidden = Image.objects.get(is_public=False).public_id
    every = demo_atlas["staff"].get(LIST, {"page_size": "100"}).json()["results"]
    assert str(hidden) not in {i["public_id"] for i in every}


def test_the_list_costs_no_more_queries_than_before(demo_atlas):
    client = demo_atlas["anonymous"]
    with CaptureQueriesContext(connection) as new:
        client.get(LIST, {"page_size": "50"})
    with CaptureQueriesContext(connection) as old:
        _legacy(SerializerImageListView, LIST, {"page_size": "50"}, client)
    assert len(new) <= len(old), [q["sql"] for q in new]


def _upload(data: bytes):
    handle = io.BytesIO(data)
    handle.name = "photo.png"
    return handle


SEARCH_VARIANTS = [
    {"q": "psoriasis", "k": "20"},
    {"q": "melanoma on dark skin", "k": "5"},
    {"q": "melanomma", "k": "3"},  # did you mean
    {"q": "itchy red rash", "condition": "psoriasis", "fitzpatrick": ["5", "6"], "k": "10"},
    {"q": "psoriasis", "origin": "synthetic"},
    {"q": "psoriasis", "diversify": "true", "k": "12"},
    {"q": "type v", "k": "4"},  # only a skin type
    {"q": "melanoma", "fitzpatrick": "unknown"},
    {"q": "a red car", "k": "3", "floor": 0.999},  # no confident match: closest
    {"q": "", "k": "3"},  # 400
]


def test_the_search_answer_is_the_serializers_json(demo_atlas, settings):
    floor = settings.SEARCH_FLOOR_TEXT
    for role, client in demo_atlas.items():
        for variant in SEARCH_VARIANTS:
            params = dict(variant)
            settings.SEARCH_FLOOR_TEXT = params.pop("floor", floor)
            new = client.get(SEARCH, params)
            status, old = _legacy(SerializerSearchView, SEARCH, params, client)
            assert new.status_code == status, (role, params)
            new_body, old_body = json.loads(new.content), json.loads(old)
            if status == 200:
                assert new_body["hits"] or new_body["closest"], params
                new_body.pop("seconds"), old_body.pop("seconds")  # wall time of each request
            assert new_body == old_body, (role, params)


def test_photo_search_is_the_serializers_json(demo_atlas, settings):
    settings.SEARCH_FLOOR_IMAGE = -1.0
    client = demo_atlas["anonymous"]
    photo = make_image_bytes(64, 64, color=(200, 120, 100), fmt="PNG")
    new = client.post(SEARCH, {"image": _upload(photo), "k": 6}, format="multipart").json()
    request = APIRequestFactory().post(SEARCH, {"image": _upload(photo), "k": 6}, format="multipart")
    response = SerializerSearchView.as_view()(request)
    response.render()
    old = json.loads(response.content)
    new.pop("seconds"), old.pop("seconds")
    assert new == old and len(new["hits"]) == 6


@pytest.mark.parametrize(
    "name",
    ["images/2026/a.jpg", "a b/ü#?.jpg", "./x.jpg", "a/../b.jpg", "/lead.jpg", "a//b.jpg", "p:q/r.jpg", "x/%41.jpg", ""],
)
@pytest.mark.parametrize("base_url", ["/media/", "https://cdn.example.org/atlas/", "/m/../media/"])
def test_file_urls_are_the_storages_own(name, base_url, settings):
    """Links joins names onto the media base itself (cheaper than urljoin per file); every name,
    including those urljoin rewrites, gives what FileSystemStorage.url gives."""
    from atlas.api.payloads import Links, _plain_media_base
    from atlas.ops.storage import FileSystemStorage

    storage = FileSystemStorage(location=str(settings.MEDIA_ROOT), base_url=base_url)
    links = Links(None)
    links._storage, links._media_base = storage, _plain_media_base(storage)
    assert links._storage_url(name) == storage.url(name)


def test_other_storages_build_their_own_urls():
    from django.core.files.storage import FileSystemStorage

    from atlas.api.payloads import _plain_media_base

    class Signed(FileSystemStorage):
        def url(self, name):
            return "https://signed.example/" + name + "?sig=1"

    assert _plain_media_base(Signed(base_url="/media/")) is None
    assert _plain_media_base(FileSystemStorage(base_url="/media/")) == "/media/"
