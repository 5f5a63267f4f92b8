"""Where the automatic gates' judges live on disk, and whether they are installed, told from the
files alone: nothing here loads a model or imports torch, so a web process that plans or starts
a gap-filling job stays small (issue 17). The worker loads the judges when the job runs
(generation.gating.gate_judges) and a file that turns out unreadable then fails the job with
its reason.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from generation import gates as gt
from generation.errors import GanError

PREPARE_COMMAND = "python manage.py prepare_gates"
CLASSIFIER_TRAIN_COMMAND = "python manage.py train_condition_classifier"


class GatesMissing(GanError):
    """A judge an enabled gate needs is not installed; the message says what to run."""


def gates_enabled() -> tuple[str, ...]:
    enabled = tuple(settings.ATLAS_GATES)
    unknown = sorted(set(enabled) - set(gt.GATES))
    if unknown:
        raise ImproperlyConfigured(f"ATLAS_GATES: unknown gate {', '.join(unknown)} (choose from {', '.join(gt.GATES)})")
    return enabled


def classifier_path() -> Path:
    return Path(settings.GAN_ROOT) / "classifiers" / "condition-classifier.pt"


def copy_index_path(window: int, size: int) -> Path:
    return Path(settings.GAN_ROOT) / "gates" / f"copy-index-w{window}-s{size}.npz"


def encoder_path(index: gt.CopyIndex) -> Path:
    return Path(settings.GAN_ROOT) / "encoders" / index.meta.get("encoder_file", "")


def classifier_vocabulary_recorded(path: Path) -> tuple[str, ...] | None:
    """The classifier's conditions as its JSON sidecar records them, or None when the sidecar is
    missing, says nothing of them, or describes another file (another size, or older)."""
    sidecar = path.with_suffix(".json")
    try:
        meta = json.loads(sidecar.read_text())
        fresh = meta.get("bytes") == path.stat().st_size and sidecar.stat().st_mtime_ns >= path.stat().st_mtime_ns
    except (OSError, ValueError, AttributeError):
        return None
    vocabulary = meta.get("vocabulary")
    if not fresh or not isinstance(vocabulary, list) or not all(isinstance(v, str) for v in vocabulary):
        return None
    return tuple(vocabulary)


def gates_check_installed(*, geometry: tuple[int, int], conditions: Sequence[str] = (),
                          enabled: Sequence[str] | None = None) -> tuple[str, ...]:
    """The enabled gates, after checking from the files that their judges are installed and
    know every one of `conditions`; GatesMissing saying what to run otherwise."""
    enabled = gates_enabled() if enabled is None else tuple(enabled)
    if "condition" in enabled:
        path = classifier_path()
        if not path.is_file():
            raise GatesMissing(f"the condition gate needs the real-only classifier: no condition classifier at {path}: "
                               f"run `{CLASSIFIER_TRAIN_COMMAND}` (or `prepare_demo`)")
        vocabulary = classifier_vocabulary_recorded(path)
        if vocabulary is None:  # a classifier saved without a sidecar: only its file can say
            from generation import quality  # torch, once per process for such a file

            vocabulary = quality.condition_classifier_load(path=path).vocabulary
        missing = sorted(set(conditions) - set(vocabulary))
        if missing:
            raise GatesMissing(f"the condition classifier was not trained on {', '.join(missing)}: "
                               f"run `{CLASSIFIER_TRAIN_COMMAND}`")
    if "copy" in enabled:
        window, size = geometry
        path = copy_index_path(window, size)
        missing = GatesMissing(f"the near-copy gate needs the crop encoder and its index of real training crops "
                               f"({window} px windows at {size} px): run `{PREPARE_COMMAND}`")
        if not path.is_file():
            raise missing
        try:
            index = gt.CopyIndex.load(path)
        except Exception as exc:  # numpy raises many kinds (zip, pickle, shape) for a damaged file
            raise GatesMissing(f"the near-copy index {path.name} is unreadable ({exc}): run `{PREPARE_COMMAND}`") from exc
        if not len(index) or not index.meta.get("encoder_file") or not encoder_path(index).is_file():
            raise missing
    return enabled
