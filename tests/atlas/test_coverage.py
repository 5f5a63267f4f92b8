"""The coverage matrix selector and the `coverage` command."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from atlas.models import Condition
from atlas.selectors import HEAT_LEVELS, coverage_matrix, heat_level
from atlas.services.ingestion import image_ingest
from tests.conftest import approved, make_image_bytes

PROVENANCE = {"model": "dermgan-test", "checkpoint": "test.pt", "seed": 1}


def ingest(source, slug: str, skin_type: int | None, *, synthetic: bool = False, seed: int, public: bool = True, reviewed: bool = True):
    # Synthetic images start pending review; `reviewed` approves them, as a reviewer would.
    image = image_ingest(
        file=make_image_bytes(seed=seed, fmt="PNG"),
        condition=Condition.objects.get(slug=slug),
        source=source,
        origin="synthetic" if synthetic else "real",
        fitzpatrick_type=skin_type,
        provenance=PROVENANCE if synthetic else None,
        is_public=public,
    ).image
    return approved(image) if reviewed else image


@pytest.fixture
def catalogue(source):
    """melanoma: 2 real on V, 1 synthetic on V, 1 real unknown; tinea: 1 real on I; 1 private on VI."""
    ingest(source, "melanoma", 5, seed=1)
    ingest(source, "melanoma", 5, seed=2)
    ingest(source, "melanoma", 5, seed=3, synthetic=True)
    ingest(source, "melanoma", None, seed=4)
    ingest(source, "tinea", 1, seed=5)
    ingest(source, "tinea", 6, seed=6, public=False)


def test_it_counts_real_and_synthetic_per_cell(catalogue):
    matrix = coverage_matrix()
    assert (matrix.real("melanoma", 5), matrix.synthetic("melanoma", 5)) == (2, 1)
    assert (matrix.real("tinea", 1), matrix.synthetic("tinea", 1)) == (1, 0)


def test_unlabelled_skin_type_lands_in_the_unknown_column(catalogue):
    assert coverage_matrix().real("melanoma", None) == 1


def test_non_public_images_are_left_out_unless_asked(catalogue):
    assert coverage_matrix().real("tinea", 6) == 0
    assert coverage_matrix(public_only=False).real("tinea", 6) == 1


def test_row_column_and_grand_totals(catalogue):
    matrix = coverage_matrix()
    assert matrix.row_total("melanoma") == (3, 1)
    assert matrix.column_total(5) == (2, 1)
    assert matrix.grand_total == (4, 1)


def test_rows_cover_every_condition_and_every_column(catalogue):
    matrix = coverage_matrix()
    assert len(matrix.rows) == Condition.objects.count()
    assert [cell.skin_type for cell in matrix.rows[0].cells] == [1, 2, 3, 4, 5, 6, None]


def test_empty_cells_are_the_gaps_in_types_one_to_six(catalogue):
    matrix = coverage_matrix(conditions=["melanoma", "tinea"])
    gaps = {(cell.condition.slug, cell.skin_type) for cell in matrix.empty_cells()}
    assert gaps == {("melanoma", s) for s in (1, 2, 3, 4, 6)} | {("tinea", s) for s in (2, 3, 4, 5, 6)}


def test_empty_cells_by_origin_counts_only_that_origin(catalogue):
    matrix = coverage_matrix(conditions=["melanoma"])
    assert 5 not in {c.skin_type for c in matrix.empty_cells(origin="real")}
    assert 5 not in {c.skin_type for c in matrix.empty_cells(origin="synthetic")}
    assert 1 in {c.skin_type for c in matrix.empty_cells(origin="synthetic")}


def test_conditions_argument_picks_and_orders_rows(catalogue):
    matrix = coverage_matrix(conditions=["tinea", Condition.objects.get(slug="melanoma")])
    assert [row.condition.slug for row in matrix.rows] == ["tinea", "melanoma"]
    assert matrix.grand_total == (4, 1)


def test_it_counts_with_one_aggregate_query(catalogue, django_assert_num_queries):
    with django_assert_num_queries(2):  # the conditions, then one GROUP BY over images
        coverage_matrix()


@pytest.mark.parametrize(("count", "level"), [(0, 0), (1, 1), (100, HEAT_LEVELS), (10, 3)])
def test_heat_level_is_logarithmic(count, level):
    assert heat_level(count, 100) == level


def run_coverage(*args: str) -> str:
    out = StringIO()
    call_command("coverage", *args, stdout=out)
    return out.getvalue()


def test_command_prints_real_plus_synthetic_and_marks_gaps(catalogue):
    lines = run_coverage().splitlines()
    melanoma = next(line for line in lines if line.startswith("Melanoma"))
    assert melanoma.split()[1:] == ["--", "--", "--", "--", "2+1", "--", "1+0", "3+1"]


def test_command_table_columns_are_aligned(catalogue):
    table = [line for line in run_coverage().splitlines()[:-2] if line]
    assert len({len(line) for line in table}) == 1


def test_command_counts_private_images_unless_public_only(catalogue):
    tinea = next(line for line in run_coverage().splitlines() if line.startswith("Tinea "))
    assert tinea.split()[6] == "1+0"
    tinea = next(line for line in run_coverage("--public-only").splitlines() if line.startswith("Tinea "))
    assert tinea.split()[6] == "--"


def test_command_origin_synthetic_shows_only_synthetic(catalogue):
    melanoma = next(line for line in run_coverage("--origin", "synthetic").splitlines() if line.startswith("Melanoma"))
    assert melanoma.split()[1:] == ["--", "--", "--", "--", "1", "--", "--", "1"]


def test_command_json(catalogue):
    data = json.loads(run_coverage("--json"))
    melanoma = next(row for row in data["conditions"] if row["slug"] == "melanoma")
    assert melanoma["cells"]["5"] == {"real": 2, "synthetic": 1}
    assert melanoma["cells"]["unknown"] == {"real": 1, "synthetic": 0}
    assert data["skin_types"] == ["1", "2", "3", "4", "5", "6", "unknown"]
