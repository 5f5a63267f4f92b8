"""The experiments' statistics against hand-computed cases."""

import numpy as np
import pytest

from generation.experiments import stats
from generation.experiments.augmentation import Item, case_split
from generation.experiments.stats import ReaderAnswerRow as Row


def test_f1_per_class_matches_hand_computation():
    # class 0: TP 2, FP 1, FN 1 -> 4/6; class 1: TP 1, FP 1, FN 1 -> 2/4; class 2: never seen -> 0
    y_true = [0, 0, 0, 1, 1]
    y_pred = [0, 0, 1, 1, 0]
    np.testing.assert_allclose(stats.f1_per_class(y_true, y_pred, 3), [4 / 6, 0.5, 0.0])


def test_confusion_rows_are_truth():
    m = stats.confusion([0, 1, 1], [1, 1, 0], 2)
    assert m.tolist() == [[0, 1], [1, 1]]


def test_bootstrap_ci_of_a_one_right_one_wrong_case():
    # Resamples of two items: accuracy 0 (1/4), 0.5 (1/2), 1 (1/4) -> the 95 % interval spans [0, 1].
    lo, hi = stats.bootstrap_ci([0, 1], [0, 0], stats.accuracy, n_boot=2000, seed=0)
    assert (float(lo), float(hi)) == (0.0, 1.0)


def test_bootstrap_ci_is_seeded_and_matches_the_binomial_spread():
    y = np.zeros(400, dtype=int)
    pred = np.r_[np.zeros(300, dtype=int), np.ones(100, dtype=int)]  # accuracy 0.75
    a = stats.bootstrap_ci(y, pred, stats.accuracy, n_boot=500, seed=3)
    b = stats.bootstrap_ci(y, pred, stats.accuracy, n_boot=500, seed=3)
    assert a == b
    half = 1.96 * np.sqrt(0.75 * 0.25 / 400)  # 0.0424
    assert a[0] == pytest.approx(0.75 - half, abs=0.01) and a[1] == pytest.approx(0.75 + half, abs=0.01)


def test_bootstrap_ci_of_a_perfect_classifier_is_a_point():
    lo, hi = stats.bootstrap_ci([0, 1, 2, 1], [0, 1, 2, 1], stats.accuracy, n_boot=50)
    assert (float(lo), float(hi)) == (1.0, 1.0)
    # Per-class F1 is a vector metric: the bounds come per class.
    lo, hi = stats.bootstrap_ci([0, 1] * 20, [0, 1] * 20, lambda t, p: stats.f1_per_class(t, p, 2), n_boot=50)
    assert lo.tolist() == [1.0, 1.0] and hi.tolist() == [1.0, 1.0]


def test_mcnemar_exact_by_hand():
    # 5 discordant pairs all one way: p = 2 * 0.5**5 = 0.0625
    assert stats.mcnemar_exact(0, 5) == pytest.approx(0.0625)
    assert stats.mcnemar_exact(3, 3) == pytest.approx(1.0)
    assert stats.mcnemar_exact(0, 0) == 1.0


def test_paired_test_counts_discordant_pairs():
    y = [0] * 10
    a = [0] * 8 + [1, 1]  # 8 right
    b = [1] + [0] * 9  # 9 right; the first image only A gets right
    t = stats.paired_test(y, a, b, n_boot=200)
    assert (t.only_a, t.only_b) == (1, 2)
    assert t.diff == pytest.approx(0.1)
    assert t.mcnemar_p == pytest.approx(1.0)  # 1 vs 2 discordant: no evidence
    identical = stats.paired_test(y, a, a, n_boot=200)
    assert identical.diff == 0 and identical.mcnemar_p == 1.0


def test_group_accuracy():
    out = stats.group_accuracy([0, 0, 1, 1], [0, 1, 1, 1], [1, 1, 6, 6])
    assert out == {1: (0.5, 2), 6: (1.0, 2)}


def test_reader_rates_by_hand():
    rows = [
        # reader a: melanoma real x2 judged real 1/2; synthetic x2 judged real 2/2
        Row("a", "melanoma", True, True, True), Row("a", "melanoma", True, False, True),
        Row("a", "melanoma", False, True, False), Row("a", "melanoma", False, True, True),
        # reader b: real 2/2 judged real; synthetic 0/2
        Row("b", "melanoma", True, True, False), Row("b", "melanoma", True, True, True),
        Row("b", "melanoma", False, False, False), Row("b", "melanoma", False, False, False),
    ]
    [mel], overall = stats.reader_rates(rows)
    assert mel.tpr.mean == pytest.approx(0.75) and mel.tpr.sd == pytest.approx(np.std([0.5, 1.0], ddof=1))
    assert mel.fpr.mean == pytest.approx(0.5) and mel.fpr.sd == pytest.approx(np.std([1.0, 0.0], ddof=1))
    assert mel.recall_real.mean == pytest.approx(0.75)  # a: 2/2, b: 1/2
    assert mel.recall_synthetic.mean == pytest.approx(0.25)  # a: 1/2, b: 0/2
    assert overall.tpr.n_readers == 2


def test_one_reader_has_no_sd():
    [rates], _ = stats.reader_rates([Row("a", "acne", True, True, None)])
    assert rates.tpr.mean == 1.0 and rates.tpr.sd is None and rates.recall_real.mean is None
    assert rates.tpr.fmt() == "1.00" and rates.recall_real.fmt() == "–"


def test_case_split_keeps_cases_together_and_tests_every_condition_with_two_cases():
    items = []
    for c, label in enumerate(["a", "b", "c"]):
        for case in range(5 + c):
            for k in range(1 + case % 3):
                items.append(Item(f"{label}-{case}-{k}", label, f"{label}-case-{case}", 1 + k))
    items.append(Item("lonely", "d", "d-case-0"))  # one case only: stays in training
    items.append(Item("no-case", "a", "image:abc"))
    train, test = case_split(items, test_fraction=0.25, seed=1)
    assert sorted(train + test) == list(range(len(items)))
    train_groups, test_groups = {items[i].group for i in train}, {items[i].group for i in test}
    assert not train_groups & test_groups
    assert {items[i].label for i in test} == {"a", "b", "c"}
    assert "d-case-0" in train_groups
    assert case_split(items, test_fraction=0.25, seed=1) == (train, test)
    assert case_split(items, test_fraction=0.25, seed=2) != (train, test)
