"""Markdown reports and matplotlib plots for the experiments. Django-free.

Plots are written with the Agg backend (no display). Every plot is a PNG beside the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from generation.experiments.stats import ConditionRates, MeanSD  # noqa: E402

PATENT = {
    "top1_baseline": 0.496,
    "f1": {"melanoma": ("0.148 [0.067, 0.193]", "0.282 [0.110, 0.356]"),
           "basal-cell-carcinoma": ("0.428 [0.343, 0.439]", "0.458 [0.301, 0.534]")},
    "paired_p": 0.56,
}


def f1_bars(path: Path, labels: Sequence[str], arms: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> Path:
    """Per-class F1 of each arm with its 95 % bootstrap interval. arms: name -> (f1, lo, hi)."""
    n = len(labels)
    fig, ax = plt.subplots(figsize=(max(8, 0.45 * n + 2), 4.5))
    width = 0.8 / len(arms)
    for k, (name, (f1, lo, hi)) in enumerate(arms.items()):
        x = np.arange(n) + (k - (len(arms) - 1) / 2) * width
        ax.bar(x, f1, width, label=name, yerr=np.vstack([f1 - lo, hi - f1]).clip(min=0), capsize=2)
    ax.set_xticks(np.arange(n), labels, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("F1 (95 % bootstrap CI)")
    ax.set_ylim(0, 1)
    ax.legend()
    ax.set_title("Per-class F1 on the real test split")
    return _save(fig, path)


def confusion_plot(path: Path, labels: Sequence[str], matrices: dict[str, np.ndarray]) -> Path:
    """Row-normalised confusion matrices side by side (rows = truth)."""
    fig, axes = plt.subplots(1, len(matrices), figsize=(7 * len(matrices), 6.5))
    for ax, (name, m) in zip(np.atleast_1d(axes), matrices.items(), strict=True):
        rows = m.sum(axis=1, keepdims=True)
        ax.imshow(np.divide(m, rows, out=np.zeros(m.shape), where=rows > 0), vmin=0, vmax=1, cmap="Blues")
        ax.set_title(f"{name} (rows: truth, normalised)")
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=6)
        ax.set_yticks(range(len(labels)), labels, fontsize=6)
        ax.set_xlabel("predicted")
    return _save(fig, path)


def group_bars(path: Path, groups: Sequence[str], arms: dict[str, Sequence[float]], *, ylabel: str, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(arms)
    for k, (name, values) in enumerate(arms.items()):
        ax.bar(np.arange(len(groups)) + (k - (len(arms) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylim(0, 1)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    return _save(fig, path)


def reader_plot(path: Path, rates: Sequence[ConditionRates], *, overall: ConditionRates | None = None) -> Path:
    """FIG. 10's two panels: (a) TPR and FPR per condition, (b) recall for real and synthetic
    images, bars = mean over readers, error bars = SD across readers."""
    rows = list(rates) + ([overall] if overall else [])
    names = [r.condition for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(max(10, 1.2 * len(rows) + 4), 4.5))
    panels = (("(a) real or synthetic?", (("TPR (real judged real)", "tpr"), ("FPR (synthetic judged real)", "fpr"))),
              ("(b) does it show the condition?", (("recall, real", "recall_real"), ("recall, synthetic", "recall_synthetic"))))
    for ax, (title, series) in zip(axes, panels, strict=True):
        for k, (label, attr) in enumerate(series):
            values: list[MeanSD] = [getattr(r, attr) for r in rows]
            x = np.arange(len(rows)) + (k - 0.5) * 0.4
            ax.bar(x, [v.mean or 0 for v in values], 0.4, label=label,
                   yerr=[v.sd or 0 for v in values], capsize=3)
        ax.set_xticks(range(len(rows)), names, rotation=45, ha="right", fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_title(title)
        ax.legend(fontsize=8)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _ci(v: float, lo: float, hi: float) -> str:
    return f"{v:.3f} [{lo:.3f}, {hi:.3f}]"


def augmentation_markdown(r: dict) -> str:
    """The report from the plain dict the service assembles (also written as results.json)."""
    b, a = r["arms"]["baseline"], r["arms"]["augmented"]
    pt = r["paired_test"]
    lines = [
        "# Augmentation study",
        "",
        f"Data: {r['data']['description']}. Classifier: torchvision mobilenet_v3_small, "
        f"{'weights ' + r['config']['weights'] if r['config']['weights'] else 'from scratch'}, "
        f"{r['config']['image_size']} px, {r['steps']} optimiser steps per arm "
        f"({r['config']['epochs']} passes over the real training split, batch {r['config']['batch_size']}), "
        "same initial weights, same augmentation (flips, brightness/contrast/saturation jitter).",
        "",
        f"Split by case: {r['split']['train_images']} real training images ({r['split']['train_cases']} cases), "
        f"{r['split']['test_images']} real test images ({r['split']['test_cases']} cases), no case on both sides. "
        f"Synthetic training images: {r['synthetic']['used']} ({r['synthetic']['how']}).",
        "",
        "## Top-1",
        "",
        "| | baseline | augmented | patent (baseline) |",
        "| --- | --- | --- | --- |",
        f"| top-1 accuracy (95 % CI) | {_ci(*b['top1'])} | {_ci(*a['top1'])} | {PATENT['top1_baseline']} |",
        f"| macro F1 | {b['macro_f1']:.3f} | {a['macro_f1']:.3f} | |",
        f"| training images | {b['n_train']} | {a['n_train']} | |",
        f"| training time | {b['seconds']:.0f} s | {a['seconds']:.0f} s | |",
        "",
        f"Paired test on the same {pt['n']} test images: baseline right / augmented wrong {pt['only_a']}, "
        f"the reverse {pt['only_b']}; exact McNemar p = {pt['mcnemar_p']:.3g}; accuracy difference "
        f"(augmented - baseline) {pt['diff']:+.3f}, paired bootstrap 95 % CI [{pt['diff_ci'][0]:+.3f}, "
        f"{pt['diff_ci'][1]:+.3f}], p = {pt['bootstrap_p']:.3g}. (Patent: p = {PATENT['paired_p']}, paired t-test.)",
        "",
        "## Per-class F1 (95 % bootstrap CI)",
        "",
        "| condition | test images | synthetic added | baseline | augmented | change | patent (baseline -> augmented) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in r["classes"]:
        patent = PATENT["f1"].get(row["slug"])
        lines.append(
            f"| {row['slug']} | {row['test']} | {row['synthetic']} | {_ci(*row['baseline'])} | {_ci(*row['augmented'])} "
            f"| {row['augmented'][0] - row['baseline'][0]:+.3f} | {' -> '.join(patent) if patent else ''} |"
        )
    lines += ["", "## Accuracy per Fitzpatrick type", "", "| skin type | test images | baseline | augmented |",
              "| --- | --- | --- | --- |"]
    for row in r["skin_types"]:
        lines.append(f"| {row['label']} | {row['n']} | {row['baseline']:.3f} | {row['augmented']:.3f} |")
    lines += ["", "## Plots", ""] + [f"![{name}]({name})" for name in r["plots"]]
    lines += ["", "## Leakage and caveats", ""] + [f"- {note}" for note in r["notes"]]
    lines += ["", f"Command: `{r['command']}`. Seed {r['config']['seed']}, {r['config']['n_boot']} bootstrap resamples.", ""]
    return "\n".join(lines)
