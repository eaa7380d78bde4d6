"""Uncertainty scores against values computed by hand."""

import math

import numpy as np
import pytest

from napari_alma.core import uncertainty

P = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.6, 0.3, 0.1]])


def test_entropy_by_hand():
    third = -(0.6 * math.log(0.6) + 0.3 * math.log(0.3) + 0.1 * math.log(0.1))
    expected = [0.0, math.log(2), third]
    np.testing.assert_allclose(uncertainty.entropy(P), expected, atol=1e-9)


def test_margin_and_least_confidence_by_hand():
    np.testing.assert_allclose(uncertainty.margin(P), [0.0, 1.0, 0.7])
    np.testing.assert_allclose(uncertainty.least_confidence(P), [0.0, 0.5, 0.4])


def test_bald_zero_unless_passes_disagree():
    agree = np.stack([P, P, P])
    np.testing.assert_allclose(uncertainty.bald(agree), 0.0, atol=1e-9)
    # Two confident passes that contradict each other: mean is a coin toss, BALD = log 2.
    disagree = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])
    np.testing.assert_allclose(uncertainty.bald(disagree), [math.log(2)], atol=1e-9)


def test_score_rejects_unknown_strategy():
    np.testing.assert_allclose(uncertainty.score(P, "margin"), uncertainty.margin(P))
    with pytest.raises(ValueError, match="Unknown uncertainty strategy 'random'"):
        uncertainty.score(P, "random")


def test_wrong_shapes_rejected():
    with pytest.raises(ValueError, match="2-D"):
        uncertainty.entropy([0.5, 0.5])
    with pytest.raises(ValueError, match="passes, cells, classes"):
        uncertainty.bald(P)
