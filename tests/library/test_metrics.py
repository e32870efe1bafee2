"""Every metric against values worked out by hand."""

import math

import numpy as np
import pytest

from reviewlstm.metrics import classification_metrics, confusion, macro_f1, regression_metrics

# true classes 0..4; one row of probabilities each, chosen so every point prediction differs
Y = np.array([0, 1, 2, 3, 4])
P = np.array([
    [1.0, 0.0, 0.0, 0.0, 0.0],  # argmax 0, expected 0.0, median 0
    [0.0, 0.0, 1.0, 0.0, 0.0],  # argmax 2, expected 2.0, median 2
    [0.0, 0.0, 0.5, 0.5, 0.0],  # argmax 2 (first of a tie), expected 2.5, median 2
    [0.6, 0.0, 0.0, 0.0, 0.4],  # argmax 0, expected 1.6, median 0
    [0.0, 0.0, 0.0, 0.2, 0.8],  # argmax 4, expected 3.8, median 4
])


def test_classification_metrics_by_hand():
    m = classification_metrics(Y, P)
    # argmax errors: 0, 1, 0, -3, 0
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["rmse"] == pytest.approx(math.sqrt(10 / 5))
    assert m["mae"] == pytest.approx(4 / 5)
    assert m["within_one"] == pytest.approx(4 / 5)
    # expected-rating errors: 0, 1, 0.5, -1.4, -0.2
    assert m["rmse_expected"] == pytest.approx(math.sqrt(3.25 / 5))
    assert m["mae_expected"] == pytest.approx(3.1 / 5)
    # median errors: 0, 1, 0, -3, 0
    assert m["mae_median"] == pytest.approx(4 / 5)
    # per-class F1 = 2TP / (#true + #pred): 2/3, 0, 2/3, 0, 1
    assert m["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 5)
    assert m["confusion"] == [
        [1, 0, 0, 0, 0],
        [0, 0, 1, 0, 0],
        [0, 0, 1, 0, 0],
        [1, 0, 0, 0, 0],
        [0, 0, 0, 0, 1],
    ]
    assert all(type(v) is float for k, v in m.items() if k != "confusion")


def test_macro_f1_leaves_out_classes_never_true_nor_predicted():
    # classes 2..4 never occur: averaged over {0, 1}, as sklearn's f1_score(average="macro")
    assert macro_f1(np.array([0, 0, 1]), np.array([0, 0, 0])) == pytest.approx((4 / 5 + 0) / 2)
    # a class only predicted counts, as 0
    assert macro_f1(np.array([0, 0]), np.array([0, 1])) == pytest.approx((2 / 3 + 0) / 2)
    assert macro_f1(Y, Y) == 1.0


def test_confusion_rows_are_true_classes():
    assert confusion(np.array([0, 0, 2]), np.array([1, 0, 2]), 3) == [[1, 1, 0], [0, 0, 0], [0, 0, 1]]


def test_regression_metrics_clip_then_round_half_up():
    pred = np.array([-1.0, 1.5, 2.4, 5.0, 3.5])
    m = regression_metrics(Y, pred)
    # clipped: 0, 1.5, 2.4, 4, 3.5 -> errors 0, 0.5, 0.4, 1, -0.5
    assert m["rmse"] == pytest.approx(math.sqrt(1.66 / 5))
    assert m["mae"] == pytest.approx(2.4 / 5)
    assert m["rmse_expected"] == m["rmse"] and m["mae_expected"] == m["mae"]
    # rounded half up: 0, 2, 2, 4, 4
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["within_one"] == 1.0
    assert m["confusion"][1] == [0, 0, 1, 0, 0] and m["confusion"][3] == [0, 0, 0, 0, 1]
    assert regression_metrics(np.array([3]), np.array([2.5]))["accuracy"] == 1.0  # 2.5 -> 3, not 2


def test_regression_range_is_configurable():
    m = regression_metrics(np.array([0, 2]), np.array([3.0, 3.0]), lo=0, hi=2)
    assert m["mae"] == pytest.approx(1.0) and m["accuracy"] == 0.5
    assert len(m["confusion"]) == 3


def test_bad_shapes_and_classes_raise():
    with pytest.raises(ValueError, match="true classes"):
        classification_metrics(np.array([0, 5]), np.full((2, 5), 0.2))
    with pytest.raises(ValueError):
        classification_metrics(np.array([0, 1, 2]), np.full((2, 5), 0.2))
