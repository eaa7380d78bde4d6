"""Review-queue order by each strategy, and progress, on a hand-made cell table."""

import json

import numpy as np
import pandas as pd
import pytest

from napari_alma.core import review_queue as rq


def cell_table(with_bald=False):
    """Five cells: probabilities over (BLA, LYT, NGS), positions in two 100-px bands."""
    probabilities = [
        {"BLA": 0.98, "LYT": 0.01, "NGS": 0.01},  # 1: certain
        {"BLA": 0.50, "LYT": 0.49, "NGS": 0.01},  # 2: close tie, low entropy
        {"BLA": 0.36, "LYT": 0.32, "NGS": 0.32},  # 3: flat, highest entropy
        {"BLA": 0.60, "LYT": 0.20, "NGS": 0.20},  # 4: wide margin, mid entropy
        {},                                       # 5: added by hand, no prediction
    ]
    table = pd.DataFrame({
        "cell_id": [1, 2, 3, 4, 5],
        "row": [10.0, 20.0, 150.0, 160.0, 30.0],
        "col": [50.0, 10.0, 80.0, 20.0, 90.0],
        "class": ["", "", "", "LYT", "NGS"],
        "predicted_class": ["BLA", "BLA", "BLA", "BLA", ""],
        "confidence": [max(p.values(), default=np.nan) for p in probabilities],
        "probabilities": [json.dumps(p) for p in probabilities],
    })
    if with_bald:
        table["bald"] = [0.01, 0.30, 0.10, 0.20, np.nan]
    return table


@pytest.mark.parametrize("strategy, expected", [
    ("entropy", [3, 4, 2, 1, 5]),
    ("margin", [2, 3, 4, 1, 5]),
    ("least_confidence", [3, 2, 4, 1, 5]),
])
def test_uncertainty_orders(strategy, expected):
    assert rq.queue_order(cell_table(), strategy).tolist() == expected


def test_bald_order():
    assert rq.queue_order(cell_table(with_bald=True), "bald").tolist() == [2, 4, 3, 1, 5]


def test_bald_missing_is_an_error():
    with pytest.raises(ValueError, match="no BALD scores"):
        rq.queue_order(cell_table(), "bald")


def test_bald_offered_only_with_scores():
    assert "bald" not in rq.available_strategies(cell_table())
    assert "bald" in rq.available_strategies(cell_table(with_bald=True))


def test_class_order_follows_scheme_then_confidence():
    order = rq.queue_order(cell_table(), "class", class_order=["NGS", "LYT", "BLA"])
    assert order.tolist() == [5, 4, 3, 2, 1]


def test_position_is_serpentine():
    # Band 0 (rows 0-99) left to right: 2 (col 10), 1 (col 50), 5 (col 90);
    # band 1 (rows 100-199) right to left: 3 (col 80), 4 (col 20).
    order = rq.queue_order(cell_table(), "position", band_height=100.0)
    assert order.tolist() == [2, 1, 5, 3, 4]


def test_unknown_strategy_is_an_error():
    with pytest.raises(ValueError, match="Unknown review order"):
        rq.queue_order(cell_table(), "random")


def test_progress_counts():
    progress = rq.review_progress(cell_table(), threshold=0.9)
    assert progress.reviewed == 2
    assert progress.total == 5
    assert progress.below_threshold == 2  # cells 2 and 3; cell 1 is at 0.98


def test_next_skips_reviewed_and_wraps():
    order = np.array([3, 4, 2, 1, 5])
    pending = {3, 2, 1}
    assert rq.next_cell(order, None, pending) == 3
    assert rq.next_cell(order, 3, pending) == 2
    assert rq.next_cell(order, 1, pending) == 3
    assert rq.next_cell(order, 1, set()) is None


def test_previous_steps_back_in_order():
    order = np.array([3, 4, 2, 1, 5])
    assert rq.next_cell(order, 2, set(), step=-1) == 4
    assert rq.next_cell(order, 3, set(), step=-1) is None
    assert rq.next_cell(order, None, set(), step=-1) == 5
