"""Skin-tone measurement in the catalogue: measure stored images, estimate unknown labels, audit
labels against measurements. The measuring itself is `atlas.skin_tone` (Django-free).

Rules, each defined once here:
- every image gets a measurement when it is ingested (or later by `skin_tone_measure_images`);
- a measured type labels an image only when its type is unknown and the measurement's
  confidence reaches `ATLAS_SKIN_TONE_MIN_CONFIDENCE_PERCENT`; the label source then says
  "estimated from colour". A type a person gave is never overwritten;
- the audit lists images whose labelled type and measured type differ by two or more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.models import F, Func, IntegerField, QuerySet
from PIL import Image as PILImage

from atlas import skin_tone as st
from atlas.models import Image

MISMATCH_DIFFERENCE = 2  # labelled and measured types this far apart are listed for review


def calibration() -> st.Calibration:
    try:
        return st.calibration_get(settings.ATLAS_SKIN_TONE_CALIBRATION)
    except ValueError as exc:
        raise ImproperlyConfigured(f"ATLAS_SKIN_TONE_CALIBRATION: {exc}") from None


def skin_tone_of_pixels(pixels: PILImage.Image, boxes: Sequence[Sequence[int]]) -> st.ToneMeasurement | None:
    """The measurement under the configured calibration; None when too little skin shows."""
    try:
        return st.measure_skin_tone(pixels, boxes, calibration=calibration())
    except st.NoSkinError:
        return None


def estimated_skin_type(measurement: st.ToneMeasurement | None) -> int | None:
    """The type a measurement may give an unlabelled image, or None when it is not confident enough."""
    if measurement is None or measurement.confidence < settings.ATLAS_SKIN_TONE_MIN_CONFIDENCE:
        return None
    return measurement.fitzpatrick


def measurement_fields(
    measurement: st.ToneMeasurement | None, *, fitzpatrick_type: int | None, label_source: str, estimate: bool,
    within: tuple[int, int] | None = None,
) -> dict:
    """Image field values for a measurement: the measured type, the stored measurement, and the
    label: as given, or, when it is unknown and `estimate` allows, a confident measured type,
    kept `within` a range a dataset gives (DDI's "5-6": the measurement picks, the range bounds)."""
    fields = {
        "measured_fitzpatrick_type": measurement.fitzpatrick if measurement else None,
        "skin_tone": measurement.as_dict() if measurement else {"none": "too little skin outside the lesions"},
        "fitzpatrick_type": fitzpatrick_type,
        "fitzpatrick_label_source": label_source if fitzpatrick_type else "",
    }
    estimated = estimated_skin_type(measurement) if estimate else None
    if fitzpatrick_type is None and estimated is not None:
        if within is not None:
            estimated = min(max(estimated, within[0]), within[1])
        fields["fitzpatrick_type"] = estimated
        fields["fitzpatrick_label_source"] = Image.LabelSource.COLOUR_ESTIMATE
    return fields


def image_skin_tone_measure(*, image: Image, estimate_unknown: bool = True) -> st.ToneMeasurement | None:
    """Measure one stored image and save the result (and, when allowed, an estimated label)."""
    from atlas.services.ingestion import stored_image_pixels  # ingestion imports this module

    boxes = [(r.x, r.y, r.width, r.height) for r in image.regions.all()]
    measurement = skin_tone_of_pixels(stored_image_pixels(image.file.name), boxes)
    fields = measurement_fields(
        measurement,
        fitzpatrick_type=image.fitzpatrick_type,
        label_source=image.fitzpatrick_label_source,
        estimate=estimate_unknown and image.origin == Image.Origin.REAL,
    )
    Image.objects.filter(pk=image.pk).update(**fields)
    for name, value in fields.items():
        setattr(image, name, value)
    return measurement


@dataclass
class MeasureSummary:
    measured: int = 0
    no_skin: int = 0
    estimated: int = 0  # unknown types labelled "estimated from colour"


def skin_tone_measure_images(
    *, remeasure: bool = False, progress: Callable[[int], None] | None = None
) -> MeasureSummary:
    """Measure every image that has no measurement yet (all of them with `remeasure`, e.g. after
    the calibration changed). Real images of unknown type get a confident estimate as their label."""
    images = Image.objects.prefetch_related("regions").order_by("id")
    if not remeasure:
        images = images.filter(skin_tone={})
    summary = MeasureSummary()
    for image in images.iterator(chunk_size=200):
        was_unknown = image.fitzpatrick_type is None
        if image_skin_tone_measure(image=image) is None:
            summary.no_skin += 1
        else:
            summary.measured += 1
        if was_unknown and image.fitzpatrick_type is not None:
            summary.estimated += 1
        if progress:
            progress(1)
    return summary


# --- reads --------------------------------------------------------------------------------------


class _Abs(Func):
    function = "ABS"
    output_field = IntegerField()


def skin_tone_mismatches(*, difference: int = MISMATCH_DIFFERENCE) -> QuerySet[Image]:
    """Images whose labelled and measured Fitzpatrick types differ by `difference` or more,
    largest difference first. Estimates from colour are left out (they agree by construction)."""
    return (
        Image.objects.exclude(fitzpatrick_type=None)
        .exclude(measured_fitzpatrick_type=None)
        .exclude(fitzpatrick_label_source=Image.LabelSource.COLOUR_ESTIMATE)
        .annotate(type_difference=_Abs(F("fitzpatrick_type") - F("measured_fitzpatrick_type")))
        .filter(type_difference__gte=difference)
        .select_related("condition", "source")
        .order_by("-type_difference", "id")
    )


@dataclass
class Agreement:
    """How often the measured type lies within one of the label, per labelled type."""

    per_type: dict[int, tuple[int, int]] = field(default_factory=dict)  # type -> (within one, measured)
    exact: int = 0
    not_measured: int = 0  # labelled images with no measurement (no skin, or not measured yet)

    @property
    def measured(self) -> int:
        return sum(n for _, n in self.per_type.values())

    @property
    def within_one(self) -> int:
        return sum(k for k, _ in self.per_type.values())

    def share(self, skin_type: int | None = None) -> float:
        k, n = self.per_type.get(skin_type, (0, 0)) if skin_type else (self.within_one, self.measured)
        return k / n if n else 0.0

    def as_dict(self) -> dict:
        return {
            "measured": self.measured, "within_one": self.within_one, "share_within_one": round(self.share(), 4),
            "exact": self.exact, "share_exact": round(self.exact / self.measured, 4) if self.measured else 0.0,
            "not_measured": self.not_measured,
            "per_type": {str(t): {"measured": n, "within_one": k, "share_within_one": round(k / n, 4) if n else 0.0}
                         for t, (k, n) in sorted(self.per_type.items())},
        }


def skin_tone_agreement(*, images: QuerySet[Image] | None = None) -> Agreement:
    """Agreement between labels (by a person: estimates from colour are left out) and measurements."""
    images = Image.objects.all() if images is None else images
    labelled = images.exclude(fitzpatrick_type=None).exclude(fitzpatrick_label_source=Image.LabelSource.COLOUR_ESTIMATE)
    agreement = Agreement()
    for label, measured in labelled.values_list("fitzpatrick_type", "measured_fitzpatrick_type"):
        if measured is None:
            agreement.not_measured += 1
            continue
        k, n = agreement.per_type.get(label, (0, 0))
        agreement.per_type[label] = (k + (abs(label - measured) <= 1), n + 1)
        agreement.exact += label == measured
    return agreement
