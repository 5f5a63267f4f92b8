"""Forms of the admin. Writes go through services (image_ingest). The search page's forms are in atlas/web/forms.py."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from atlas.models import Condition, ConditionLabelMapping, Image
from atlas.services.ingestion import Box, IngestionError, image_ingest


def parse_boxes(text: str) -> list[Box]:
    """Read one box per line as "x,y,width,height" (pixels of the oriented image)."""
    boxes = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            x, y, width, height = (int(part) for part in line.replace(" ", "").split(","))
        except ValueError:
            raise forms.ValidationError(f"line {number}: write a box as x,y,width,height (whole pixels)") from None
        boxes.append(Box(x, y, width, height))
    return boxes


class ImageIngestForm(forms.ModelForm):
    """The admin's "add image": the file and its labels go through `image_ingest`, never around it.

    Ingestion is the validator (content type, limits, duplicates, boxes), so it runs while the
    form is validated; its errors become form errors and nothing is stored. On success
    `save()` returns the stored image.
    """

    upload = forms.FileField(label="Image file", help_text="JPEG, PNG or WebP. Metadata (GPS, camera) is removed.")
    boxes = forms.CharField(
        label="Regions of interest",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 30}),
        help_text="Optional. One box per line: x,y,width,height in pixels.",
    )

    class Meta:
        model = Image
        fields = [
            "condition", "fitzpatrick_type", "fitzpatrick_label_source", "monk_tone", "body_site",
            "source", "licence", "attribution", "case_id", "external_id", "is_public",
        ]  # fmt: skip
        help_texts = {"licence": "Leave empty to use the source's licence."}

    field_order = ["upload", *Meta.fields, "boxes"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["licence"].required = False
        self.stored: Image | None = None

    def clean_boxes(self) -> list[Box]:
        return parse_boxes(self.cleaned_data.get("boxes") or "")

    def _post_clean(self) -> None:
        super()._post_clean()
        if self.errors:
            return
        data = self.cleaned_data
        upload = data["upload"]
        upload.seek(0)
        try:
            result = image_ingest(
                file=upload,
                condition=data["condition"],
                source=data["source"],
                origin=Image.Origin.REAL,  # synthetic images come from the generator, with provenance
                fitzpatrick_type=data.get("fitzpatrick_type"),
                fitzpatrick_label_source=data.get("fitzpatrick_label_source") or "",
                monk_tone=data.get("monk_tone"),
                body_site=data.get("body_site") or "",
                licence=data.get("licence") or "",
                attribution=data.get("attribution") or "",
                case_id=data.get("case_id") or "",
                external_id=data.get("external_id") or "",
                regions=data.get("boxes") or [],
                is_public=data.get("is_public", True),
            )
        except IngestionError as error:
            field = "boxes" if error.code.startswith(("region", "empty_region")) else "upload"
            self.add_error(field, error.message)
            return
        if not result.created:
            self.add_error(
                "upload", f"This image is already in the catalogue (image {result.image.public_id}); nothing was stored."
            )
            return
        self.stored = result.image

    def save(self, commit: bool = True) -> Image:
        if self.stored is None:
            raise ValueError("save() called on an ImageIngestForm that did not validate")
        self.instance = self.stored
        self.save_m2m = lambda: None
        return self.stored


class ConditionAdminForm(forms.ModelForm):
    """Synonyms edited as one per line, further reading as one "title | https://..." per line,
    instead of raw JSON; look-alikes chosen among the other public conditions."""

    synonyms = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 40}),
        help_text="One synonym per line (lay and clinical names people search for).",
    )
    further_reading = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        help_text="One public reference per line: title | https://address",
    )

    class Meta:
        model = Condition
        fields = [
            "slug", "name", "category", "synonyms", "summary", "description", "appearance_light", "appearance_dark",
            "lookalikes", "see_clinician", "further_reading",
        ]  # fmt: skip

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.is_bound:
            self.initial["synonyms"] = "\n".join(self.instance.synonyms)
            self.initial["further_reading"] = "\n".join(f"{r['title']} | {r['url']}" for r in self.instance.further_reading)
        if "lookalikes" in self.fields:
            others = Condition.objects.public()
            self.fields["lookalikes"].queryset = others.exclude(pk=self.instance.pk) if self.instance.pk else others

    def clean_further_reading(self) -> list[dict[str, str]]:
        references = []
        for number, line in enumerate((self.cleaned_data.get("further_reading") or "").splitlines(), start=1):
            if not line.strip():
                continue
            title, bar, url = line.rpartition("|")
            title, url = title.strip(), url.strip()
            if not bar or not title:
                raise forms.ValidationError(f"line {number}: write a reference as title | https://address")
            try:
                URLValidator(schemes=["https"])(url)
            except ValidationError:
                raise forms.ValidationError(f"line {number}: {url!r} is not an https address") from None
            references.append({"title": title, "url": url})
        return references

    def clean_synonyms(self) -> list[str]:
        seen: dict[str, str] = {}
        for line in (self.cleaned_data.get("synonyms") or "").splitlines():
            name = line.strip()
            if name and name.lower() not in seen:
                seen[name.lower()] = name
        return list(seen.values())


class ConditionLabelMappingForm(forms.ModelForm):
    """Labels are stored lower-cased; normalise before validation so a duplicate in another
    case is reported as a form error instead of failing at the database."""

    class Meta:
        model = ConditionLabelMapping
        fields = ["dataset", "label", "condition"]

    def clean_label(self) -> str:
        return self.cleaned_data["label"].strip().lower()

    def clean_dataset(self) -> str:
        return self.cleaned_data["dataset"].strip()
