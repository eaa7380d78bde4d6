"""Derive each cell's current state from the predictions table and the event log."""

from __future__ import annotations

import numpy as np
import pandas as pd

# The reader's newest event among these sets the reader's class. An ``unlabel`` event (an
# undone first label) has no new class, so the cell is unreviewed again.
LABEL_ACTIONS = ("label", "review", "add", "unlabel")
DELETE_ACTIONS = ("delete", "restore")

CELL_TABLE_COLUMNS = [
    "slide_id", "cell_id", "row", "col", "row_um", "col_um", "class", "predicted_class",
    "confidence", "probabilities", "source", "label_source", "reader", "updated_at",
    "model_version", "bald", "deleted",
]


def derive_cell_table(
    cells: pd.DataFrame,
    predictions: pd.DataFrame,
    events: pd.DataFrame,
    reader: str | None,
    mpp: float | None,
) -> pd.DataFrame:
    """Join cells with their newest prediction and ``reader``'s newest label.

    ``label_source`` is "added" for cells a reader added, "corrected" when the reader's
    class differs from the prediction, "model" when the reader confirmed it, and empty
    while the cell is unreviewed.
    """
    table = cells[["slide_id", "cell_id", "row", "col", "source"]].copy()
    scale = mpp if mpp else np.nan
    table["row_um"] = table["row"] * scale
    table["col_um"] = table["col"] * scale

    newest = predictions.groupby("cell_id").tail(1).set_index("cell_id")
    table["predicted_class"] = _map_text(table["cell_id"], newest["class"], "")
    table["confidence"] = table["cell_id"].map(newest["confidence"])
    table["probabilities"] = _map_text(table["cell_id"], newest["probabilities"], "{}")
    table["model_version"] = _map_text(table["cell_id"], newest["model_version"], "")
    bald = newest["bald"] if "bald" in newest else pd.Series(dtype=float)
    table["bald"] = table["cell_id"].map(bald).astype(float)

    labels = events[events["action"].isin(LABEL_ACTIONS) & (events["reader"] == reader)]
    last_label = labels.groupby("cell_id").tail(1).set_index("cell_id")
    table["class"] = _map_text(table["cell_id"], last_label["new_class"], "")
    table["reader"] = _map_text(table["cell_id"], last_label["reader"], "")
    table["updated_at"] = _map_text(table["cell_id"], last_label["time"], "")
    unlabelled = table["class"] == ""
    table.loc[unlabelled, ["reader", "updated_at"]] = ""

    deletions = events[events["action"].isin(DELETE_ACTIONS)]
    last_deletion = deletions.groupby("cell_id").tail(1).set_index("cell_id")["action"]
    table["deleted"] = table["cell_id"].map(last_deletion).eq("delete")

    table["label_source"] = _label_source(table)
    return table[CELL_TABLE_COLUMNS].reset_index(drop=True)


def _map_text(keys: pd.Series, mapping: pd.Series, missing: str = "") -> pd.Series:
    values = keys.map(mapping).astype(object)
    return values.where(values.notna(), missing)


def _label_source(table: pd.DataFrame) -> pd.Series:
    source = pd.Series("", index=table.index, dtype=object)
    labelled = table["class"] != ""
    source[labelled & (table["class"] == table["predicted_class"])] = "model"
    source[labelled & (table["class"] != table["predicted_class"])] = "corrected"
    source[table["source"] == "added"] = "added"
    return source


def effective_labels(table: pd.DataFrame) -> pd.Series:
    """Return the class each cell counts as: the human label, else the prediction."""
    return table["class"].where(table["class"] != "", table["predicted_class"])


def labels_by_reader(events: pd.DataFrame) -> pd.DataFrame:
    """Return each reader's current class of each cell: one row per cell, one column per reader.

    Only the readers' own labels count (``label``, ``review``, ``add``); an adjudication is
    not a reader's label. A cell a reader never labelled has an empty string.
    """
    labels = events[events["action"].isin(LABEL_ACTIONS)]
    newest = labels.groupby(["cell_id", "reader"]).tail(1)
    table = newest.pivot(index="cell_id", columns="reader", values="new_class")
    return table.fillna("").astype(object)


def adjudicated_classes(events: pd.DataFrame) -> pd.Series:
    """Return the agreed class of each adjudicated cell (the newest adjudication wins).

    An adjudication applies until a newer one replaces it, even when a reader changes
    their label afterwards.
    """
    adjudications = events[events["action"] == "adjudicate"]
    return adjudications.groupby("cell_id").tail(1).set_index("cell_id")["new_class"]


def disputed_cells(events: pd.DataFrame, cell_ids) -> list[int]:
    """Return the cells, among ``cell_ids``, that readers classed differently."""
    by_reader = labels_by_reader(events).reindex(pd.Index(cell_ids, name="cell_id"))
    by_reader = by_reader.fillna("")
    labelled_twice = by_reader[(by_reader != "").sum(axis=1) >= 2]
    return sorted(int(cell_id)
                  for cell_id, row in zip(labelled_twice.index, labelled_twice.to_numpy())
                  if len(set(row) - {""}) > 1)


def unadjudicated_disagreements(events: pd.DataFrame, cell_ids) -> list[int]:
    """Return the cells, among ``cell_ids``, that readers classed differently, unadjudicated."""
    settled = set(adjudicated_classes(events).index)
    return [cell_id for cell_id in disputed_cells(events, cell_ids) if cell_id not in settled]


def match_existing(existing: pd.DataFrame, positions: np.ndarray, radius: float) -> list:
    """Return, for each new position, the id of the existing cell within ``radius``, or None.

    Each existing cell is matched at most once (to its nearest new position), so two
    detections near one cell yield one match and one new cell.
    """
    if existing.empty or len(positions) == 0:
        return [None] * len(positions)
    from scipy.spatial import cKDTree

    tree = cKDTree(existing[["row", "col"]].to_numpy())
    distances, indices = tree.query(positions, distance_upper_bound=radius)
    matches: list = [None] * len(positions)
    taken: set[int] = set()
    for new_index in np.argsort(distances):
        existing_index = indices[new_index]
        if np.isfinite(distances[new_index]) and existing_index not in taken:
            taken.add(existing_index)
            matches[new_index] = int(existing["cell_id"].iloc[existing_index])
    return matches
