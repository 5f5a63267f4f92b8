"""The relevance-floor calibration on made-up scores (no Django, no model)."""

import numpy as np
import pytest

from search.calibration import floor_calibrate, floor_evaluate


def test_the_floor_keeps_the_asked_share_of_positives_and_reports_what_it_rejects():
    positive = np.linspace(0.30, 0.70, 101)  # 0.30, 0.304, ...
    negative = np.array([0.05, 0.10, 0.20, 0.31, 0.50])
    result = floor_calibrate(positive, negative, keep=0.95)
    assert result.floor == pytest.approx(0.32)  # the 6th lowest positive: 96 of 101 stay
    assert result.recall == pytest.approx(96 / 101)
    assert result.rejected == pytest.approx(4 / 5)  # only 0.50 gets through
    assert result.precision == pytest.approx(96 / 97)


def test_separable_scores_reject_every_negative():
    result = floor_calibrate(np.array([0.8, 0.9, 0.85]), np.array([0.1, 0.2]), keep=1.0)
    assert (result.floor, result.recall, result.rejected, result.precision) == (0.8, 1.0, 1.0, 1.0)


def test_evaluating_a_fixed_floor():
    result = floor_evaluate(np.array([0.2, 0.4]), np.array([0.3, 0.6]), floor=0.35)
    assert (result.recall, result.rejected, result.precision) == (0.5, 0.5, 0.5)


@pytest.mark.parametrize("keep", [0.0, 1.5])
def test_bad_arguments(keep):
    with pytest.raises(ValueError):
        floor_calibrate(np.array([0.5]), np.array([0.1]), keep=keep)
    with pytest.raises(ValueError):
        floor_calibrate(np.array([]), np.array([0.1]))
