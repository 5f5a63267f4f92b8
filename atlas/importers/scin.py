"""SCIN (Ward et al. 2024): `scin_cases.csv` + `scin_labels.csv`, joined on case_id.

METADATA is the cases file; the labels file is read from beside it (or the cases file may
already carry the label columns). case_id is kept as a string: the ids are 19-digit numbers
that a float parser would corrupt. Each case has up to three images (image_1_path ..
image_3_path, e.g. "dataset/images/123.png").

Condition: the top entry of `weighted_skin_condition_label`, the dermatologists' aggregated
differential ({'Eczema': 0.69, ...}); the full differential is kept in the provenance. Cases
without one (ungradable) are skipped and counted.

Skin type: the dermatologists' estimates `dermatologist_fitzpatrick_skin_type_label_1..3`
(most frequent value, the lower median on a tie) as "dermatologist"; otherwise the
contributor's own `fitzpatrick_skin_type` (FST1-FST6, NONE_SELECTED) as "self_reported".
Monk tone: `monk_skin_tone_label_us`, else `monk_skin_tone_label_india` (trained lay graders).
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

from atlas.importers.base import (
    DatasetFormat,
    ImportFileError,
    ImportRow,
    RowOutcome,
    SkippedRow,
    label_key,
    read_csv,
)
from atlas.skin import parse_fitzpatrick

CASES_REQUIRED = ("case_id", "fitzpatrick_skin_type", "image_1_path")
LABELS_REQUIRED = ("case_id", "weighted_skin_condition_label")
IMAGE_COLUMNS = ("image_1_path", "image_2_path", "image_3_path")


def read(metadata_path: Path) -> list[RowOutcome]:
    header, cases = read_csv(metadata_path, CASES_REQUIRED)
    if "weighted_skin_condition_label" in header:
        labels = {row["case_id"]: row for _, row in cases}  # an already merged file
    else:
        labels_path = metadata_path.with_name("scin_labels.csv")
        if not labels_path.is_file():
            raise ImportFileError(f"scin needs scin_labels.csv beside {metadata_path.name}; nothing was imported")
        _, label_rows = read_csv(labels_path, LABELS_REQUIRED)
        labels = {row["case_id"]: row for _, row in label_rows}
    outcomes: list[RowOutcome] = []
    for number, case in cases:
        outcomes.extend(_case_outcomes(number, case, labels.get(case["case_id"])))
    return outcomes


def _case_outcomes(number: int, case: dict[str, str], labels: dict[str, str] | None) -> list[RowOutcome]:
    if labels is None:
        return [SkippedRow(number, "no_label", f"case {case['case_id']} has no row in scin_labels.csv")]
    try:
        weighted = {str(name): float(weight) for name, weight in _literal(labels.get("weighted_skin_condition_label", ""), dict).items()}
    except (ValueError, TypeError) as exc:
        return [SkippedRow(number, "bad_label", f"weighted_skin_condition_label: {exc}")]
    if not weighted:
        return [SkippedRow(number, "no_label", f"case {case['case_id']} has no dermatologist condition label")]
    top = max(weighted, key=weighted.__getitem__)  # max keeps the first (best-ranked) on ties
    try:
        skin_type, skin_source = _skin_type(case, labels)
    except ValueError as exc:
        return [SkippedRow(number, "bad_skin_type", str(exc))]
    paths = [case.get(column, "") for column in IMAGE_COLUMNS if case.get(column, "")]
    if not paths:
        return [SkippedRow(number, "missing_file", f"case {case['case_id']} lists no image")]
    details = {
        "weighted_skin_condition_label": weighted,
        "self_reported_fitzpatrick": case.get("fitzpatrick_skin_type", ""),
        "dermatologist_fitzpatrick": [labels.get(f"dermatologist_fitzpatrick_skin_type_label_{i}", "") for i in (1, 2, 3)],
    }
    return [
        ImportRow(
            row=number,
            image_ref=path,
            label=label_key(top),
            fitzpatrick_type=skin_type,
            fitzpatrick_label_source=skin_source,
            monk_tone=_monk(labels),
            body_site=_body_site(case),
            case_id=case["case_id"],
            external_id=path.rsplit("/", 1)[-1],
            details=details,
        )
        for path in paths
    ]


def _literal(text: str, kind: type) -> object:
    if not text:
        return kind()
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise ValueError(f"cannot read {text[:60]!r}") from None
    if not isinstance(value, kind):
        raise ValueError(f"expected a {kind.__name__}, got {text[:60]!r}")
    return value


def _skin_type(case: dict[str, str], labels: dict[str, str]) -> tuple[int | None, str]:
    estimates = []
    for i in (1, 2, 3):
        try:
            value = parse_fitzpatrick(labels.get(f"dermatologist_fitzpatrick_skin_type_label_{i}", ""))
        except ValueError:
            value = None  # e.g. a grader's "not gradable": no estimate from this dermatologist
        if value is not None:
            estimates.append(value)
    if estimates:
        counts = Counter(estimates).most_common()
        if len(counts) == 1 or counts[0][1] > counts[1][1]:
            return counts[0][0], "dermatologist"
        ordered = sorted(estimates)
        return ordered[(len(ordered) - 1) // 2], "dermatologist"
    self_reported = parse_fitzpatrick(case.get("fitzpatrick_skin_type", ""))
    return self_reported, "self_reported" if self_reported else ""


def _monk(labels: dict[str, str]) -> int | None:
    for column in ("monk_skin_tone_label_us", "monk_skin_tone_label_india"):
        text = labels.get(column, "").removesuffix(".0")
        if text.isdigit() and 1 <= int(text) <= 10:
            return int(text)
    return None


def _body_site(case: dict[str, str]) -> str:
    parts = [
        column.removeprefix("body_parts_").replace("_", " ")
        for column, value in case.items()
        if column.startswith("body_parts_") and value.upper() in ("YES", "TRUE")
    ]
    return ", ".join(parts)


FORMAT = DatasetFormat(
    name="scin",
    title="Skin Condition Image Network (SCIN)",
    read=read,
    source_name="SCIN",
    licence="LicenseRef-SCIN-Data-Use-License",
    allows_generative_training=True,
    url="https://github.com/google-research-datasets/scin",
    attribution="SCIN dataset, Ward et al. 2024 (Google Research and Stanford Medicine), SCIN Data Use License",
)
