import json

from django.core.management.base import BaseCommand, CommandError

from atlas.services.skin_tone import (
    MISMATCH_DIFFERENCE,
    calibration,
    skin_tone_agreement,
    skin_tone_measure_images,
    skin_tone_mismatches,
)
from atlas.skin import roman


class Command(BaseCommand):
    help = (
        "Measure the skin tone of images not measured yet (all with --remeasure), then report how often "
        "the measured Fitzpatrick type lies within one of the label, per type, and list images whose "
        "labelled and measured types differ by two or more (for review). Real images of unknown type get "
        "a confident measurement as their label ('estimated from colour')."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument("--remeasure", action="store_true", help="measure every image again (e.g. after a calibration change)")
        parser.add_argument("--difference", type=int, default=MISMATCH_DIFFERENCE, help="list label/measure differences this large (default 2)")
        parser.add_argument("--limit", type=int, default=50, help="mismatches listed (default 50; 0 = all)")

    def handle(self, *args, json: bool, remeasure: bool, difference: int, limit: int, **options):
        if not 1 <= difference <= 5:
            raise CommandError("--difference must be 1-5")
        if limit < 0:
            raise CommandError("--limit must be 0 or more")
        measured = skin_tone_measure_images(remeasure=remeasure)
        agreement = skin_tone_agreement()
        mismatches = skin_tone_mismatches(difference=difference)
        total = mismatches.count()
        rows = [
            {"public_id": str(image.public_id), "condition": image.condition.slug, "origin": image.origin,
             "labelled": image.fitzpatrick_type, "label_source": image.fitzpatrick_label_source,
             "measured": image.measured_fitzpatrick_type, "ita": image.skin_tone.get("ita"),
             "confidence": image.skin_tone.get("confidence"), "source": image.source.slug}
            for image in (mismatches[:limit] if limit else mismatches)
        ]
        if json:
            self.stdout.write(_json_dumps({
                "calibration": calibration().name, "newly_measured": measured.measured, "no_skin": measured.no_skin,
                "estimated_from_colour": measured.estimated, "agreement": agreement.as_dict(),
                "mismatch_difference": difference, "mismatches_total": total, "mismatches": rows,
            }))
            return
        self._text(calibration().name, measured, agreement, difference, total, rows)

    def _text(self, cal, measured, agreement, difference, total, rows):
        out = self.stdout.write
        out(f"calibration: {cal}; measured now: {measured.measured} (no skin: {measured.no_skin}; "
            f"unknown types estimated from colour: {measured.estimated})")
        out(f"labelled images measured: {agreement.measured}; measured type within one of the label: "
            f"{agreement.share():.3f} ({agreement.within_one}); exact: {agreement.exact}; not measurable: {agreement.not_measured}")
        for skin_type, (k, n) in sorted(agreement.per_type.items()):
            out(f"  type {roman(skin_type):>3}: {k / n:.3f} within one ({k} of {n})")
        out(f"labelled and measured types {difference} or more apart: {total}")
        for row in rows:
            out(f"  {row['public_id']}  {row['condition']:36} labelled {roman(row['labelled']):>3} ({row['label_source'] or '?'}), "
                f"measured {roman(row['measured']):>3}  ITA {row['ita']}  confidence {row['confidence']}")


def _json_dumps(data) -> str:
    return json.dumps(data, indent=1)
