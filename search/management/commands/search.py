import json

from django.core.management.base import BaseCommand, CommandError

from search.errors import SearchError, SearchUnavailable
from atlas.filters import ImageFilters
from search.query import search_text


class Command(BaseCommand):
    help = 'Search the atlas by text, e.g. search "psoriasis on dark skin" --skin-type 5 -k 10'

    def add_arguments(self, parser) -> None:
        parser.add_argument("query")
        parser.add_argument("--condition", action="append", default=[], help="Condition slug (repeatable).")
        parser.add_argument("--skin-type", action="append", type=int, default=[], help="Fitzpatrick type 1-6 (repeatable).")
        parser.add_argument("--origin", choices=["real", "synthetic"], default="")
        parser.add_argument("--source", default="", help="Source slug.")
        parser.add_argument("--licence", default="")
        parser.add_argument("-k", type=int, default=10)
        parser.add_argument("--diversify", action="store_true", help="Spread results across skin types.")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **o) -> None:
        filters = ImageFilters(
            conditions=tuple(o["condition"]), skin_types=tuple(o["skin_type"]), origin=o["origin"], source=o["source"], licence=o["licence"]
        )
        try:
            result = search_text(query=o["query"], filters=filters, k=o["k"], diversify=o["diversify"])
        except (SearchError, SearchUnavailable) as exc:
            raise CommandError(str(exc)) from None
        if o["json"]:
            self.stdout.write(json.dumps(result.as_dict(), indent=2))
            return
        if result.fallback:
            self.stderr.write(f"note: exact search over stored vectors ({result.fallback})")
        meaning = result.interpretation
        self.stdout.write(f"conditions {list(meaning.conditions) or '-'}, skin types {list(meaning.skin_types) or '-'}")
        if meaning.suggestion:
            self.stdout.write(f"did you mean: {meaning.suggestion}")
        if result.skin_type_gap:
            gap = result.skin_type_gap
            self.stdout.write(f"no images of {', '.join(gap.conditions)} on type {gap.requested}: nearest types {gap.nearest}")
        if not result.confident:
            self.stdout.write(f"no confident match (best score below the floor {result.floor}); the closest images:")
        for rank, hit in enumerate(result.hits or result.closest, start=1):
            image = hit.image
            self.stdout.write(
                f"{rank:3d}. {hit.score:.3f}{'*' if hit.boosted else ' '} {image.condition.slug:<28} "
                f"type {image.fitzpatrick_type or '-'}  {image.origin:<9} {image.public_id}"
            )
