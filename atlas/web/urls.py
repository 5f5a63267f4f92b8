from django.urls import path, register_converter

from atlas.web import drills, staff, views


class FileKind:
    """An image's file: the full image or its thumbnail."""

    regex = "file|thumbnail"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(FileKind, "file_kind")

app_name = "atlas"

urlpatterns = [
    path("", views.home, name="home"),
    path("search/", views.search, name="search"),
    path("search/photo/", views.search_photo, name="search_photo"),
    path("coverage/", views.coverage, name="coverage"),
    path("conditions/", views.condition_list, name="condition_list"),
    path("conditions/<slug:slug>/", views.condition_detail, name="condition_detail"),
    path("conditions/<slug:slug>/drill/", drills.condition_drill, name="condition_drill"),
    path("skin-types/<int:skin_type>/", views.skin_type_detail, name="skin_type_detail"),
    path("images/", views.image_list, name="image_list"),  # old address: redirects to search
    path("images/<uuid:public_id>/", views.image_detail, name="image_detail"),
    # The files of an image, hidden ones included (staff only): never a guessable storage path.
    path("images/<uuid:public_id>/<file_kind:kind>/", views.image_file, name="image_file"),
    path("staff/skin-tone/", staff.skin_tone_audit, name="skin_tone_audit"),
]
