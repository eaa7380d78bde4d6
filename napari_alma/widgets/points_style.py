"""Styling of the cells Points layer: features, face and border colours, point size.

The module uses only numpy and pandas, so the styling is tested without Qt or napari.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from napari_alma.core.scheme import ClassScheme
from napari_alma.store.labels import effective_labels

# A circle this wide, drawn around the cell centre, encloses a 12-15 µm leukocyte and
# leaves the cell itself unpainted.
MARKER_DIAMETER_UM = 20.0
# NOTE: used only when a slide has no µm/px at all; 80 pixels is a 20 µm marker at
# 0.25 µm/px, a common 40x scan. The size is only a display choice.
FALLBACK_MARKER_DIAMETER_PX = 80.0
TRANSPARENT = "transparent"
# Border widths relative to the marker size (2 and 0.8 µm on a 20 µm marker): a thick
# circle once a reader has labelled the cell, a thin one while it carries only the
# model's class. Thicker circles hide the neighbours in a packed 100x marrow field.
REVIEWED_BORDER_WIDTH = 0.1
UNREVIEWED_BORDER_WIDTH = 0.04
UNKNOWN_CLASS_RGBA = (0.5, 0.5, 0.5, 1.0)
# Colour of a cell the reader has not labelled yet during a blind read: a translucent
# light grey that no scheme class uses, so it reveals nothing about the cell's class.
BLIND_UNLABELLED_RGBA = (0.85, 0.85, 0.85, 0.6)
FEATURE_COLUMNS = ("cell_id", "class", "predicted_class", "confidence", "reviewed")


def point_size(mpp: float | None) -> float:
    """Return the diameter of a cell marker in level-0 pixels (20 µm)."""
    if not mpp:
        return FALLBACK_MARKER_DIAMETER_PX
    return MARKER_DIAMETER_UM / mpp


def layer_features(table: pd.DataFrame) -> pd.DataFrame:
    """Return the Points layer features of a cell table, one row per cell.

    ``class`` is the effective label (the reader's class, else the model's), and the
    face colour shows it. ``reviewed`` is True once a reader labelled the cell.
    """
    # NOTE: object columns, because pandas 3 stores text in immutable Arrow arrays, where
    # changing one cell's class copies the whole column.
    return pd.DataFrame(
        {
            "cell_id": table["cell_id"].astype(int).to_numpy(),
            "class": pd.Series(effective_labels(table).to_numpy(str), dtype=object),
            "predicted_class": pd.Series(table["predicted_class"].to_numpy(str), dtype=object),
            "confidence": pd.to_numeric(table["confidence"], errors="coerce").to_numpy(float),
            "reviewed": (table["class"] != "").to_numpy(bool),
        }
    )


def blind_features(table: pd.DataFrame) -> pd.DataFrame:
    """Return layer features that carry only the reader's own labels, for a blind read.

    ``class`` is empty until the reader labels the cell, and the model's class and
    confidence are left out, so nothing on screen (colours, the status bar's feature
    values) shows the prediction.
    """
    return pd.DataFrame(
        {
            "cell_id": table["cell_id"].astype(int).to_numpy(),
            "class": pd.Series(table["class"].to_numpy(str), dtype=object),
            "predicted_class": np.full(len(table), "", dtype=object),
            "confidence": np.full(len(table), np.nan),
            "reviewed": (table["class"] != "").to_numpy(bool),
        }
    )


def empty_features() -> pd.DataFrame:
    """Return features with the layer's columns and no rows."""
    return pd.DataFrame(
        {
            "cell_id": pd.Series([], dtype=int),
            "class": pd.Series([], dtype=object),
            "predicted_class": pd.Series([], dtype=object),
            "confidence": pd.Series([], dtype=float),
            "reviewed": pd.Series([], dtype=bool),
        }
    )


def class_colors(classes, scheme: ClassScheme) -> np.ndarray:
    """Return (N, 4) float RGBA colours: each class's fixed scheme colour.

    An empty class (a cell not yet labelled in a blind read) gets the neutral
    ``BLIND_UNLABELLED_RGBA``.
    """
    colors = [
        scheme[code].rgba if code in scheme else
        BLIND_UNLABELLED_RGBA if code == "" else UNKNOWN_CLASS_RGBA
        for code in classes
    ]
    return np.asarray(colors, dtype=float).reshape(-1, 4)


def border_widths(reviewed) -> np.ndarray:
    """Return (N,) border widths, relative to the point size: thick when reviewed."""
    reviewed = np.asarray(reviewed, dtype=bool)
    return np.where(reviewed, REVIEWED_BORDER_WIDTH, UNREVIEWED_BORDER_WIDTH).astype(float)
