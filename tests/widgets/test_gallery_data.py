"""Gallery ordering, grouping and uncertainty scores, without Qt."""

import json

import numpy as np
import pandas as pd
import pytest

from napari_alma.core import uncertainty
from napari_alma.core.scheme import default_scheme
from napari_alma.widgets import gallery_data

SCHEME = default_scheme()
PROBABILITIES = [
    {"NGS": 0.9, "LYT": 0.1},
    {"NGS": 0.5, "LYT": 0.5},
    {"LYT": 0.7, "NGS": 0.2, "EOS": 0.1},
    {},
    {"NGS": 0.6, "LYT": 0.4},
]


@pytest.fixture
def items():
    features = pd.DataFrame({
        "cell_id": [10, 11, 12, 13, 14],
        "class": ["NGS", "NGS", "LYT", "BLA", "NGS"],
        "predicted_class": ["NGS", "NGS", "LYT", "", "NGS"],
        "confidence": [0.9, 0.5, 0.7, np.nan, 0.6],
        "reviewed": [False, False, True, True, False],
    })
    positions = np.arange(10, dtype=float).reshape(5, 2)
    scores = gallery_data.uncertainty_table(features["cell_id"],
                                            [json.dumps(p) for p in PROBABILITIES])
    return gallery_data.gallery_items(features, positions, scores)


def test_scores_match_uncertainty_module(items):
    expected = uncertainty.entropy(np.array([[0.7, 0.2, 0.1]]))[0]
    assert items.loc[12, "entropy"] == pytest.approx(expected)
    assert items.loc[11, "margin"] == pytest.approx(1.0)
    assert items.loc[10, "least_confidence"] == pytest.approx(0.1)


def test_added_cell_has_no_score(items):
    assert np.isnan(items.loc[13, "entropy"])


def test_groups_in_scheme_order(items):
    assert list(gallery_data.order_cells(items, SCHEME)) == [13, 11, 14, 10, 12]


def test_sort_by_margin_most_uncertain_first(items):
    order = gallery_data.order_cells(items, SCHEME, group="NGS", sort="margin")
    assert list(order) == [11, 14, 10]


def test_sort_by_confidence_highest_first(items):
    order = gallery_data.order_cells(items, SCHEME, group="NGS", sort="confidence_high")
    assert list(order) == [10, 14, 11]


def test_not_reviewed_filter(items):
    order = gallery_data.order_cells(items, SCHEME, not_reviewed=True)
    assert list(order) == [11, 14, 10]


def test_group_counts(items):
    counts = gallery_data.group_counts(items, SCHEME)
    assert counts["NGS"] == 3
    assert counts["BLA"] == 1
    assert counts["EOS"] == 0
    assert gallery_data.group_counts(items, SCHEME, not_reviewed=True)["BLA"] == 0


def test_unknown_sort_rejected(items):
    with pytest.raises(ValueError, match="entropy"):
        gallery_data.order_cells(items, SCHEME, sort="size")
