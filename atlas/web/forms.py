"""The search page's forms. Every value of a text search lives in the URL so it can be shared;
a photo search is a POST (the photo cannot be put in a URL, and it is never stored)."""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.conf import settings

from atlas.filters import FilterError, filters_parse
from atlas.models import Condition, Image
from atlas.selectors import condition_by_name
from atlas.skin import FITZPATRICK_TYPES, roman

UNKNOWN = "unknown"
ORIGIN_CHOICES = [("", "Both"), (Image.Origin.REAL, "Real only"), (Image.Origin.SYNTHETIC, "Synthetic only")]


@dataclass(frozen=True)
class SearchQuery:
    """What the person asked for, checked: the view hands it to atlas.web.results."""

    text: str = ""
    condition: Condition | None = None
    condition_typed: str = ""  # what was typed in the picker, when it was a synonym ("ringworm")
    skin_types: tuple[int | None, ...] = ()  # None = skin type unknown (browsing only)
    origin: str = ""  # "", "real" or "synthetic"
    source: str = ""  # source slug (from a link; the page has no control for it)
    licence: str = ""  # licence identifier, any case (from a link, like the API's)
    like: Image | None = None  # "more like this image"

    @property
    def is_search(self) -> bool:
        """True when the answer needs the embedding model (text or similar), not just the catalogue."""
        return bool(self.text or self.like)


class SearchForm(forms.Form):
    q = forms.CharField(
        required=False,
        label="Search",
        max_length=settings.SEARCH_MAX_QUERY_CHARS,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "e.g. psoriasis on dark skin", "autocomplete": "off"}),
    )
    condition = forms.CharField(
        required=False,
        label="Condition",
        max_length=120,
        help_text="Type a name or an everyday word: \u201cringworm\u201d finds tinea.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    fitzpatrick = forms.MultipleChoiceField(
        required=False,
        label="Skin type (Fitzpatrick)",
        choices=[(str(n), f"Type {roman(n)}") for n in FITZPATRICK_TYPES] + [(UNKNOWN, "Unknown")],
        widget=forms.CheckboxSelectMultiple,
    )
    origin = forms.ChoiceField(required=False, label="Real or synthetic", choices=ORIGIN_CHOICES, widget=forms.RadioSelect)
    like = forms.UUIDField(required=False, widget=forms.HiddenInput)
    # Filters a link may carry (the API's names and meaning, atlas/filters.py); kept as hidden fields.
    source = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)
    licence = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)

    is_photo = False  # PhotoSearchForm: a photo is a search, like text

    def clean_condition(self) -> Condition | None:
        typed = " ".join(self.cleaned_data["condition"].split())
        if not typed:
            return None
        condition = condition_by_name(typed)
        if condition is None:
            raise forms.ValidationError(f"No condition is called \u201c{typed}\u201d. Pick one from the list.")
        return condition

    def clean_fitzpatrick(self) -> tuple[int | None, ...]:
        return tuple(None if value == UNKNOWN else int(value) for value in self.cleaned_data["fitzpatrick"])

    def clean_like(self) -> Image | None:
        public_id = self.cleaned_data["like"]
        if public_id is None:
            return None
        image = Image.objects.public().select_related("condition").filter(public_id=public_id).first()
        if image is None:
            raise forms.ValidationError("That image is not in the public atlas.")
        return image

    def clean(self) -> dict:
        data = super().clean()
        try:  # the one definition of what these filters accept
            filters_parse({name: data.get(name) or "" for name in ("source", "licence")})
        except FilterError as exc:
            for name, messages in exc.errors.items():
                self.add_error(name, " ".join(messages))
        searching = data.get("q") or data.get("like") or self.is_photo
        if searching and None in (data.get("fitzpatrick") or ()):
            self.add_error(
                "fitzpatrick",
                "\u201cUnknown\u201d skin type can be browsed, not searched: untick it, or clear the search words.",
            )
        return data

    def query(self) -> SearchQuery:
        data = self.cleaned_data
        condition = data["condition"]
        typed = " ".join(self.data.get("condition", "").split())
        synonym = typed if condition and typed.casefold() not in (condition.slug, condition.name.casefold()) else ""
        return SearchQuery(
            text=" ".join(data["q"].split()),
            condition=condition,
            condition_typed=synonym,
            skin_types=data["fitzpatrick"],
            origin=data["origin"],
            source=data.get("source") or "",
            licence=data.get("licence") or "",
            like=data.get("like"),
        )


class PhotoSearchForm(SearchForm):
    """Search by photo: the same filters plus the photo, read in memory only."""

    is_photo = True
    photo = forms.FileField(
        label="Your photo",
        help_text="JPEG, PNG or WebP. Used for this one search: never stored, and none of its metadata is kept.",
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )

    def clean_photo(self) -> bytes:
        # The upload handler of the view kept it in memory; bytes, so nothing can save it by accident.
        upload = self.cleaned_data["photo"]
        upload.seek(0)
        return upload.read()
