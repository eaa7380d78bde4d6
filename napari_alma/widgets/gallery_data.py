"""Cell data behind the gallery: each cell's class, review state, uncertainty and order.

The module uses only numpy and pandas, so the ordering is tested without Qt.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from napari_alma.core import uncertainty
from napari_alma.core.scheme import ClassScheme

UNCERTAINTY_COLUMNS = ("entropy", "margin", "least_confidence")
# Sort orders: column and direction. Uncertainty sorts put the most uncertain cell first,
# and "confidence_low" the least confident one, so that doubtful cells come first.
SORT_ORDERS = {
    "confidence_low": ("confidence", True),
    "confidence_high": ("confidence", False),
    "entropy": ("entropy", False),
    "margin": ("margin", False),
    "least_confidence": ("least_confidence", False),
}
ITEM_COLUMNS = ("cell_id", "row", "col", "class", "predicted_class", "confidence", "reviewed",
                *UNCERTAINTY_COLUMNS)


def uncertainty_table(cell_ids, probabilities) -> pd.DataFrame:
    """Return the entropy, margin and least-confidence score of each cell, indexed by cell id.

    Parameters
    ----------
    cell_ids : (N,) int array-like
    probabilities : (N,) sequence of str
        The store's JSON text ``{class code: probability}`` per cell; "{}" (a cell a
        reader added, with no prediction) gives NaN scores.
    """
    rows = [list(json.loads(text or "{}").values()) for text in probabilities]
    width = max((len(row) for row in rows), default=0)
    # Zero-padding changes none of the three scores: 0 * log 0 is 0, and a zero is
    # never one of the two largest probabilities of a row that sums to 1.
    matrix = np.zeros((len(rows), max(width, 2)))
    for index, row in enumerate(rows):
        matrix[index, : len(row)] = row
    scores = pd.DataFrame(
        {column: uncertainty.score(matrix, column) for column in UNCERTAINTY_COLUMNS},
        index=pd.Index(np.asarray(cell_ids, dtype=int), name="cell_id"),
    )
    scores.loc[np.array([not row for row in rows], dtype=bool)] = np.nan
    return scores


def gallery_items(features: pd.DataFrame, positions, scores: pd.DataFrame) -> pd.DataFrame:
    """Join the cells layer's features and positions with the uncertainty scores.

    Parameters
    ----------
    features : pandas.DataFrame
        The cells layer's features (``cell_id``, ``class`` as the effective label,
        ``predicted_class``, ``confidence``, ``reviewed``).
    positions : (N, 2) float array-like
        The cells' (row, col) in level-0 pixels, in the order of ``features``.
    scores : pandas.DataFrame
        :func:`uncertainty_table` output; cells missing from it get NaN scores.

    Returns
    -------
    pandas.DataFrame
        One row per cell, indexed by cell id, with the columns of ``ITEM_COLUMNS``.
    """
    positions = np.asarray(positions, dtype=float).reshape(-1, 2)
    items = pd.DataFrame({
        "cell_id": features["cell_id"].to_numpy(int),
        "row": positions[:, 0],
        "col": positions[:, 1],
        "class": features["class"].astype(str).to_numpy(),
        "predicted_class": features["predicted_class"].astype(str).to_numpy(),
        "confidence": features["confidence"].to_numpy(float),
        "reviewed": features["reviewed"].to_numpy(bool),
    })
    items = items[items["cell_id"] >= 0]
    joined = items.join(scores.reindex(columns=list(UNCERTAINTY_COLUMNS)), on="cell_id")
    return joined.set_index("cell_id", drop=False)


def order_cells(items: pd.DataFrame, scheme: ClassScheme, group: str | None = None,
                sort: str = "confidence_low", not_reviewed: bool = False) -> np.ndarray:
    """Return the cell ids to show, in gallery order.

    Parameters
    ----------
    items : pandas.DataFrame
        :func:`gallery_items` output.
    scheme : ClassScheme
        Gives the order of the class groups.
    group : str, optional
        Show only this class code; by default every class, group after group.
    sort : str
        A key of ``SORT_ORDERS``: the order of the cells inside each group. Cells without
        a score (added by a reader) come last; ties keep the cell id order.
    not_reviewed : bool
        Show only the cells no reader has labelled or confirmed.

    Returns
    -------
    (M,) int ndarray
    """
    if sort not in SORT_ORDERS:
        raise ValueError(f"Unknown gallery sort {sort!r}; use one of {', '.join(SORT_ORDERS)}.")
    shown = items
    if group is not None:
        shown = shown[shown["class"] == group]
    if not_reviewed:
        shown = shown[~shown["reviewed"]]
    column, ascending = SORT_ORDERS[sort]
    rank = {code: index for index, code in enumerate(scheme.codes)}
    keys = pd.DataFrame({
        "group": shown["class"].map(rank).fillna(len(rank)).to_numpy(),
        "missing": shown[column].isna().to_numpy(),
        "value": shown[column].to_numpy(float) * (1 if ascending else -1),
        "cell_id": shown["cell_id"].to_numpy(int),
    })
    keys = keys.sort_values(["group", "missing", "value", "cell_id"], kind="stable")
    return keys["cell_id"].to_numpy(int)


def group_counts(items: pd.DataFrame, scheme: ClassScheme, not_reviewed: bool = False) -> dict:
    """Return class code -> number of cells in that group (only unreviewed ones if asked)."""
    shown = items[~items["reviewed"]] if not_reviewed else items
    counts = shown["class"].value_counts()
    return {code: int(counts.get(code, 0)) for code in scheme.codes}
