"""The review queue: the order in which a reader visits the cells of a slide, and progress.

The functions take a cell table (one row per cell, as the project store's ``cell_table``
returns it: ``cell_id, row, col, class, predicted_class, confidence, probabilities`` and,
when Monte-Carlo dropout was run, ``bald``) and return cell ids. ``class`` is the reader's
label, empty while the cell is unreviewed. Nothing here touches the store or Qt.

Strategies:

- ``entropy``, ``margin``, ``least_confidence``, ``bald``: most uncertain first (see
  :mod:`napari_alma.core.uncertainty`). BALD needs a ``bald`` column with at least one value.
- ``class``: grouped by the class each cell shows, in class-scheme order, the least
  confident first within a class.
- ``position``: along the smear, in a serpentine over horizontal bands of fixed height:
  left to right in the first band, right to left in the next, and so on, as one moves the
  stage at the microscope.

Ties keep the cell-id order, so an order is reproducible.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from napari_alma.core import uncertainty

UNCERTAINTY_STRATEGIES = ("entropy", "margin", "least_confidence", "bald")
STRATEGIES = (*UNCERTAINTY_STRATEGIES, "class", "position")
# A cell whose model confidence is under this value must be reviewed before sign-off.
DEFAULT_CONFIDENCE_THRESHOLD = 0.8
# Height of one serpentine band: about half the field of a 100x oil objective.
DEFAULT_BAND_UM = 100.0


@dataclass(frozen=True)
class Progress:
    """How far the review of a slide has come.

    ``reviewed`` of ``total`` cells carry a reader's label; ``below_threshold`` unreviewed
    cells have a model confidence under ``threshold`` (or none at all).
    """

    reviewed: int
    total: int
    below_threshold: int
    threshold: float


def available_strategies(table: pd.DataFrame) -> list[str]:
    """Return the strategies that ``table`` supports (BALD only with BALD scores)."""
    return [s for s in STRATEGIES if s != "bald" or has_bald(table)]


def has_bald(table: pd.DataFrame) -> bool:
    """Return True when ``table`` has a ``bald`` column with at least one score."""
    return "bald" in table.columns and bool(pd.to_numeric(table["bald"]).notna().any())


def queue_order(
    table: pd.DataFrame,
    strategy: str,
    *,
    class_order: Sequence[str] = (),
    band_height: float = 400.0,
) -> np.ndarray:
    """Return every cell id of ``table`` in the order a reader visits them.

    Parameters
    ----------
    table : pandas.DataFrame
        The cell table (see the module docstring).
    strategy : str
        One of ``STRATEGIES``.
    class_order : sequence of str
        Class codes in display order, for ``class``; other classes follow, by code.
    band_height : float
        Height of one serpentine band for ``position``, in level-0 pixels.

    Returns
    -------
    (N,) int ndarray
        Cell ids, first to visit first.
    """
    if strategy not in STRATEGIES:
        raise ValueError(
            f"Unknown review order {strategy!r}; expected one of {', '.join(STRATEGIES)}."
        )
    ids = table["cell_id"].to_numpy(int)
    if strategy == "position":
        keys = _serpentine_keys(table, band_height)
    elif strategy == "class":
        keys = _class_keys(table, class_order)
    else:
        keys = [-uncertainty_scores(table, strategy)]
    # np.lexsort sorts by the last key first; the cell id breaks every tie.
    return ids[np.lexsort([ids, *reversed(keys)])]


def uncertainty_scores(table: pd.DataFrame, strategy: str) -> np.ndarray:
    """Return each cell's uncertainty under ``strategy``; a cell with no prediction ranks last.

    Raises
    ------
    ValueError
        For ``bald`` when the table has no BALD scores.
    """
    if strategy == "bald":
        if not has_bald(table):
            raise ValueError(
                "The cells have no BALD scores: predict with Monte-Carlo dropout first, "
                "or order by entropy, margin or least confidence."
            )
        scores = pd.to_numeric(table["bald"]).to_numpy(float)
    elif strategy == "least_confidence":
        scores = 1.0 - pd.to_numeric(table["confidence"]).to_numpy(float)
    else:
        probabilities, known = probability_matrix(table)
        scores = np.where(known, uncertainty.score(probabilities, strategy), np.nan)
    return np.where(np.isnan(scores), -np.inf, scores)


def probability_matrix(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Return the (N, K) class probabilities of the cells and an (N,) mask of known rows.

    The ``probabilities`` column contains JSON objects ``{code: p}``. A cell added by hand
    has none (``{}``) and gets a row of zeros with a False mask entry.
    """
    parsed = [json.loads(text) if text else {} for text in table["probabilities"]]
    codes = sorted({code for row in parsed for code in row})
    column = {code: k for k, code in enumerate(codes)}
    matrix = np.zeros((len(parsed), max(len(codes), 1)))
    for i, row in enumerate(parsed):
        for code, p in row.items():
            matrix[i, column[code]] = p
    return matrix, np.array([bool(row) for row in parsed], dtype=bool)


def _class_keys(table: pd.DataFrame, class_order: Sequence[str]) -> list[np.ndarray]:
    shown = table["class"].where(table["class"] != "", table["predicted_class"]).astype(str)
    rank = {code: i for i, code in enumerate(class_order)}
    unknown = sorted(set(shown) - set(rank))
    rank.update({code: len(class_order) + i for i, code in enumerate(unknown)})
    confidence = pd.to_numeric(table["confidence"]).to_numpy(float)
    return [shown.map(rank).to_numpy(int), np.nan_to_num(confidence, nan=-1.0)]


def _serpentine_keys(table: pd.DataFrame, band_height: float) -> list[np.ndarray]:
    if not band_height > 0:
        raise ValueError(f"The band height must be positive, got {band_height} pixels.")
    band = np.floor(table["row"].to_numpy(float) / band_height).astype(int)
    col = table["col"].to_numpy(float)
    return [band, np.where(band % 2 == 0, col, -col)]


def pending_mask(table: pd.DataFrame) -> np.ndarray:
    """Return an (N,) mask of the cells still to review: those without a reader's label."""
    return (table["class"] == "").to_numpy(bool)


def below_threshold_mask(table: pd.DataFrame, threshold: float) -> np.ndarray:
    """Return an (N,) mask of unreviewed cells whose model confidence is under ``threshold``.

    A cell without a confidence (no prediction) counts as under the threshold.
    """
    confidence = pd.to_numeric(table["confidence"]).to_numpy(float)
    return _below_threshold(pending_mask(table), confidence, threshold)


def _below_threshold(pending: np.ndarray, confidence: np.ndarray, threshold: float):
    return pending & ~(confidence >= threshold)


def review_progress(
    table: pd.DataFrame, threshold: float = DEFAULT_CONFIDENCE_THRESHOLD
) -> Progress:
    """Return reviewed / total cells and the unreviewed cells under ``threshold``."""
    confidence = pd.to_numeric(table["confidence"]).to_numpy(float)
    return progress_of(pending_mask(table), confidence, threshold)


def progress_of(pending: np.ndarray, confidence: np.ndarray, threshold: float) -> Progress:
    """Return the progress from (N,) arrays: still-to-review mask and model confidences."""
    pending = np.asarray(pending, dtype=bool)
    return Progress(
        reviewed=int((~pending).sum()),
        total=len(pending),
        below_threshold=int(_below_threshold(pending, confidence, threshold).sum()),
        threshold=float(threshold),
    )


def next_cell(
    order: np.ndarray, current: int | None, pending: set[int], step: int = 1
) -> int | None:
    """Return the cell to show after ``current`` in ``order``.

    Forward (``step=1``), it is the next pending cell, wrapping around past the end.
    Backward (``step=-1``), it is the cell just before ``current``, reviewed or not, so
    the reader can look again at the cell just labelled. Returns None when no cell fits.

    Parameters
    ----------
    order : (N,) int ndarray
        Cell ids in queue order, from :func:`queue_order`.
    current : int or None
        The cell shown now; None starts from the beginning (or the end, going back).
    pending : set of int
        Ids of the cells still to review.
    step : {1, -1}
        Direction.
    """
    if len(order) == 0:
        return None
    position = _position(order, current)
    if step < 0:
        start = len(order) if position is None else position
        return int(order[start - 1]) if start > 0 else None
    start = -1 if position is None else position
    rolled = np.roll(order, -(start + 1))
    candidates = np.isin(rolled, np.fromiter(pending, dtype=int, count=len(pending)))
    candidates &= rolled != (-1 if current is None else current)
    hits = np.flatnonzero(candidates)
    return int(rolled[hits[0]]) if len(hits) else None


def _position(order: np.ndarray, current: int | None) -> int | None:
    if current is None:
        return None
    found = np.flatnonzero(order == current)
    return int(found[0]) if len(found) else None
