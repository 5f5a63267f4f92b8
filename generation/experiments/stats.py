"""Statistics for the experiments: F1, bootstrap intervals, paired tests, reader rates. Django-free.

Conventions (written down because papers differ):
- F1 of a class = 2 TP / (2 TP + FP + FN); 0 when the class is never predicted and never true
  (the denominator is 0), so an absent class cannot raise a mean.
- Bootstrap intervals are percentile intervals over resampled test images (with replacement),
  seeded, so the same predictions and seed give the same interval.
- Reader rates are computed per reader, then averaged; the spread is the sample standard
  deviation across readers (ddof=1), None with fewer than two readers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest


def confusion(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> np.ndarray:
    """n_classes x n_classes counts, rows = truth, columns = prediction."""
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return m


def f1_per_class(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> np.ndarray:
    m = confusion(y_true, y_pred, n_classes)
    tp = np.diag(m).astype(float)
    fp = m.sum(axis=0) - tp
    fn = m.sum(axis=1) - tp
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros(n_classes), where=denom > 0)


def accuracy(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    t, p = np.asarray(y_true), np.asarray(y_pred)
    return float((t == p).mean()) if len(t) else float("nan")


def bootstrap_ci(
    y_true: Sequence[int],
    y_pred: Sequence[int],
    metric: Callable[[np.ndarray, np.ndarray], np.ndarray | float],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of `metric(y_true[idx], y_pred[idx])` over `n_boot` resamples.
    The metric may return a scalar or a vector (e.g. per-class F1): bounds have its shape."""
    t, p = np.asarray(y_true), np.asarray(y_pred)
    rng = np.random.default_rng(seed)
    values = np.stack([np.asarray(metric(t[idx], p[idx]), dtype=float)
                       for idx in rng.integers(0, len(t), size=(n_boot, len(t)))])
    tail = (1 - level) / 2 * 100
    return np.percentile(values, tail, axis=0), np.percentile(values, 100 - tail, axis=0)


@dataclass(frozen=True)
class PairedTest:
    n: int
    only_a: int  # images model A got right and model B wrong
    only_b: int
    mcnemar_p: float  # exact (binomial) McNemar test on the discordant pairs
    diff: float  # accuracy(B) - accuracy(A)
    diff_ci: tuple[float, float]  # paired bootstrap 95 % interval of the difference
    bootstrap_p: float  # two-sided paired bootstrap p-value for diff == 0


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: the discordant pairs are Binomial(b + c, 1/2) under H0."""
    n = only_a + only_b
    return 1.0 if n == 0 else float(binomtest(min(only_a, only_b), n, 0.5).pvalue)


def paired_test(
    y_true: Sequence[int], pred_a: Sequence[int], pred_b: Sequence[int], *, n_boot: int = 2000, seed: int = 0
) -> PairedTest:
    """Do models A and B differ in top-1 accuracy on the same test images?"""
    t = np.asarray(y_true)
    ca, cb = np.asarray(pred_a) == t, np.asarray(pred_b) == t
    only_a, only_b = int((ca & ~cb).sum()), int((cb & ~ca).sum())
    d = cb.astype(float) - ca.astype(float)
    rng = np.random.default_rng(seed)
    boots = np.array([d[idx].mean() for idx in rng.integers(0, len(d), size=(n_boot, len(d)))])
    # Centre the bootstrap distribution on H0 (no difference) for the p-value.
    p = float(np.mean(np.abs(boots - d.mean()) >= abs(d.mean()) - 1e-12))
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return PairedTest(len(t), only_a, only_b, mcnemar_exact(only_a, only_b), float(d.mean()), (float(lo), float(hi)), p)


def group_accuracy(y_true: Sequence[int], y_pred: Sequence[int], groups: Sequence) -> dict:
    """{group: (accuracy, n)}, e.g. per Fitzpatrick type."""
    out: dict = {}
    t, p, g = np.asarray(y_true), np.asarray(y_pred), np.asarray(groups, dtype=object)
    for key in sorted(set(groups), key=lambda k: (k is None, k)):
        mask = g == key
        out[key] = (float((t[mask] == p[mask]).mean()), int(mask.sum()))
    return out


# --- reader studies ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReaderAnswerRow:
    reader: str
    condition: str
    is_real: bool  # the truth
    judged_real: bool | None  # "real or synthetic?"
    judged_condition: bool | None  # "does this image show CONDITION?"


@dataclass(frozen=True)
class MeanSD:
    mean: float | None
    sd: float | None  # across readers; None with fewer than two readers
    n_readers: int

    def fmt(self) -> str:
        if self.mean is None:
            return "–"
        return f"{self.mean:.2f}" + (f" ± {self.sd:.2f}" if self.sd is not None else "")


def mean_sd(values: Iterable[float]) -> MeanSD:
    v = np.array([x for x in values if x is not None], dtype=float)
    if len(v) == 0:
        return MeanSD(None, None, 0)
    return MeanSD(float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else None, len(v))


def _rate(rows: list[ReaderAnswerRow], attr: str) -> float | None:
    answered = [getattr(r, attr) for r in rows if getattr(r, attr) is not None]
    return sum(answered) / len(answered) if answered else None


@dataclass(frozen=True)
class ConditionRates:
    condition: str
    tpr: MeanSD  # real images judged real
    fpr: MeanSD  # synthetic images judged real
    recall_real: MeanSD  # real images judged to show the condition
    recall_synthetic: MeanSD  # synthetic images judged to show the condition


def reader_rates(rows: Iterable[ReaderAnswerRow]) -> tuple[list[ConditionRates], ConditionRates]:
    """Per condition (and over all conditions): each reader's rates, then mean and SD across readers."""
    rows = list(rows)
    by_condition: dict[str, list[ReaderAnswerRow]] = defaultdict(list)
    for r in rows:
        by_condition[r.condition].append(r)

    def rates(name: str, subset: list[ReaderAnswerRow]) -> ConditionRates:
        per_reader: dict[str, list[ReaderAnswerRow]] = defaultdict(list)
        for r in subset:
            per_reader[r.reader].append(r)
        readers = list(per_reader.values())
        real = [[r for r in rs if r.is_real] for rs in readers]
        synth = [[r for r in rs if not r.is_real] for rs in readers]
        return ConditionRates(
            name,
            tpr=mean_sd(_rate(rs, "judged_real") for rs in real),
            fpr=mean_sd(_rate(rs, "judged_real") for rs in synth),
            recall_real=mean_sd(_rate(rs, "judged_condition") for rs in real),
            recall_synthetic=mean_sd(_rate(rs, "judged_condition") for rs in synth),
        )

    return [rates(c, by_condition[c]) for c in sorted(by_condition)], rates("all", rows)
