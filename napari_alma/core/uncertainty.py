"""Uncertainty scores from class probabilities, for ordering the review queue.

Every score is higher for a cell a human should look at sooner, so that every strategy
sorts the same way (descending). ``probabilities`` has one row per cell and one column per
class, each row summing to 1; ``samples`` (for BALD) stacks ``T`` Monte-Carlo dropout passes
as an array of shape (T, cells, classes).
"""

from __future__ import annotations

import numpy as np

STRATEGIES = ("entropy", "margin", "least_confidence", "bald")

_TINY = 1e-12


def _as_rows(probabilities) -> np.ndarray:
    array = np.asarray(probabilities, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(
            f"Class probabilities must be a 2-D array (cells x classes), got shape {array.shape}."
        )
    return array


def entropy(probabilities) -> np.ndarray:
    """Shannon entropy of each row, in nats (0 for a certain cell, log K at most)."""
    p = _as_rows(probabilities)
    return -np.sum(p * np.log(np.clip(p, _TINY, 1.0)), axis=1)


def margin(probabilities) -> np.ndarray:
    """Return one minus the gap between the two most probable classes (1: a tie, 0: certain)."""
    p = _as_rows(probabilities)
    if p.shape[1] < 2:
        return np.zeros(p.shape[0])
    top2 = np.sort(p, axis=1)[:, -2:]
    return 1.0 - (top2[:, 1] - top2[:, 0])


def least_confidence(probabilities) -> np.ndarray:
    """Return one minus the probability of the most probable class."""
    p = _as_rows(probabilities)
    return 1.0 - p.max(axis=1, initial=0.0)


def bald(samples) -> np.ndarray:
    """BALD mutual information from Monte-Carlo dropout passes (Houlsby et al. 2011).

    The entropy of the mean prediction minus the mean entropy of the passes: high where
    the passes disagree with each other, which is the model's own (epistemic) doubt.
    """
    stack = np.asarray(samples, dtype=np.float64)
    if stack.ndim != 3:
        raise ValueError(
            f"BALD needs Monte-Carlo samples shaped (passes, cells, classes), got {stack.shape}."
        )
    mean_entropy = np.mean([entropy(pass_) for pass_ in stack], axis=0)
    return np.clip(entropy(stack.mean(axis=0)) - mean_entropy, 0.0, None)


def score(probabilities, strategy: str) -> np.ndarray:
    """Return the uncertainty of each cell under ``strategy`` (BALD needs samples: see ``bald``)."""
    functions = {"entropy": entropy, "margin": margin, "least_confidence": least_confidence}
    if strategy not in functions:
        raise ValueError(
            f"Unknown uncertainty strategy {strategy!r}; use one of {', '.join(functions)} "
            "(BALD needs Monte-Carlo samples: call bald())."
        )
    return functions[strategy](probabilities)
