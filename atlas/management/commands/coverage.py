"""Print the coverage matrix: images per condition x Fitzpatrick type, real and synthetic."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandParser

from atlas.selectors import CoverageMatrix, coverage_matrix
from atlas.skin import roman

EMPTY = "--"  # a cell with no images: a gap


class Command(BaseCommand):
    help = (
        "Print images per condition x Fitzpatrick type (I-VI, unknown). With --origin all (the default) "
        "each cell reads REAL+SYNTHETIC; '--' marks a cell with no images. Counts every image, public or "
        "not, unless --public-only."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--origin", choices=["real", "synthetic", "all"], default="all")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print JSON instead of a table")
        parser.add_argument("--public-only", action="store_true", help="count only public images")

    def handle(self, *args, origin: str, as_json: bool, public_only: bool, **options) -> None:
        matrix = coverage_matrix(public_only=public_only)
        if as_json:
            self.stdout.write(_json(matrix, origin))
        else:
            self.stdout.write(format_table(matrix, origin=origin))


def _json(matrix: CoverageMatrix, origin: str) -> str:
    data = matrix.as_dict()
    data["origin"] = origin
    return json.dumps(data, indent=2)


def format_table(matrix: CoverageMatrix, *, origin: str = "all") -> str:
    def cell(real: int, synthetic: int) -> str:
        if origin == "real":
            return str(real) if real else EMPTY
        if origin == "synthetic":
            return str(synthetic) if synthetic else EMPTY
        return f"{real}+{synthetic}" if real + synthetic else EMPTY

    header = ["condition", *(roman(s) for s in matrix.skin_types), "total"]
    body = [
        [row.condition.name, *(cell(c.real, c.synthetic) for c in row.cells), cell(row.real, row.synthetic)]
        for row in matrix.rows
    ]
    totals = ["total", *(cell(*matrix.column_total(s)) for s in matrix.skin_types), cell(*matrix.grand_total)]
    table = [header, *body, totals]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]

    def line(values: list[str]) -> str:
        first, *rest = values
        return "  ".join([first.ljust(widths[0]), *(v.rjust(w) for v, w in zip(rest, widths[1:], strict=True))])

    rule = "-" * len(line(header))
    legend = {
        "all": "cells: real+synthetic",
        "real": "cells: real images",
        "synthetic": "cells: synthetic images",
    }[origin]
    gaps = len(matrix.empty_cells(origin=None if origin == "all" else origin))
    return "\n".join(
        [
            line(header),
            rule,
            *(line(values) for values in body),
            rule,
            line(totals),
            "",
            f"{legend}; {EMPTY} = no images (gap). Empty cells in I-VI: {gaps}.",
        ]
    )
