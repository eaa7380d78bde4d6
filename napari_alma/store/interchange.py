"""Shared rules of the interchange formats: coordinates, cell records and file errors.

Inside napari-alma a cell sits at (row, col) in level-0 pixels with pixel centres at whole
numbers. GeoJSON (as QuPath writes it) and COCO both put the origin at the top-left corner
of the top-left pixel, with x to the right and y down, so the centre of pixel (row, col) is
at x = col + 0.5, y = row + 0.5. Every reader and writer converts here and only here.

A reader turns a file into *cell records*: one row per cell of a ``pandas.DataFrame`` with
the columns of :data:`RECORD_COLUMNS`. :mod:`napari_alma.store.imports` checks them against
the slide and the class scheme and stores them.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from napari_alma.core.i18n import tr

PIXEL_CENTRE_OFFSET = 0.5
"""Distance from a pixel's top-left corner to its centre, in pixels."""

CELL_BOX_UM = 20.0
"""Side of the square drawn around a cell in COCO, in µm: a large marrow leukocyte."""

FALLBACK_MPP = 0.25
"""µm/px assumed for the box side when a slide has no pixel size: a 40x scan."""

RECORD_COLUMNS = [
    "where", "slide_id", "cell_id", "row", "col", "class", "labelled", "predicted_class",
    "model_version", "probabilities", "confidence", "source",
]
"""Columns of the cell records a reader returns.

``where`` names the record in its file ("feature 3", "line 5") for error messages.
``slide_id`` is the slide the file assigns the cell to (None when it names none).
``cell_id`` is the id the file gives the cell (None when it gives none). ``class`` is the
class the file gives the cell ("" for none). ``labelled`` is True when the file marks
``class`` as a reader's label, False when it marks the cell as unreviewed, and None when the
format cannot tell (QuPath). ``probabilities`` maps class codes to the model's
probabilities (an empty dict for none) and ``confidence`` the predicted class's probability
as the store holds it (None when the file does not give it). ``source`` is "model",
"added" or None (unknown).
"""


class AnnotationFileError(ValueError):
    """An annotation file cannot be imported; the message names the record and field."""


def file_error(path: Path, where: str, field: str, problem: str) -> AnnotationFileError:
    """Return the error for one invalid value of an annotation file."""
    return AnnotationFileError(
        tr("store_import_invalid", file=path, where=where, field=field, problem=problem)
    )


def to_xy(row: float, col: float) -> tuple[float, float]:
    """Return the (x, y) of a cell's pixel centre in the corner-origin convention."""
    return col + PIXEL_CENTRE_OFFSET, row + PIXEL_CENTRE_OFFSET


def from_xy(x: float, y: float) -> tuple[float, float]:
    """Return the (row, col) of a point given in the corner-origin convention."""
    return y - PIXEL_CENTRE_OFFSET, x - PIXEL_CENTRE_OFFSET


def exact_position(stored: object, converted: float) -> float:
    """Return the position a file stored as-is when it agrees with its geometry.

    Adding and removing the half-pixel offset can change the last bit of a float, so files
    written by napari-alma also carry (row, col) unchanged. Those are used when they lie
    within a thousandth of a pixel of the geometry, because another tool may have moved it.
    """
    if isinstance(stored, (int, float)) and not isinstance(stored, bool):
        if abs(float(stored) - converted) < 1e-3:
            return float(stored)
    return converted


def box_side_px(mpp: float | None) -> float:
    """Return the side of a cell's COCO box in level-0 pixels."""
    return CELL_BOX_UM / (mpp or FALLBACK_MPP)


def hex_to_rgb(color: str) -> list[int]:
    """Return ``#rrggbb`` as [r, g, b] integers in 0-255."""
    digits = color.lstrip("#")
    return [int(digits[i : i + 2], 16) for i in (0, 2, 4)]


def parse_probabilities(text: object) -> dict[str, float]:
    """Return the probabilities stored as JSON text in the store and the tables."""
    if not isinstance(text, str) or not text:
        return {}
    return json.loads(text)


def records_frame(records: list[dict]) -> pd.DataFrame:
    """Return cell records as a DataFrame with :data:`RECORD_COLUMNS`."""
    frame = pd.DataFrame(records, columns=RECORD_COLUMNS)
    return frame.astype({"where": object, "slide_id": object, "cell_id": object})


def check_number(value: object, path: Path, where: str, field: str) -> float:
    """Return ``value`` as a finite float, or raise naming the record and field."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise file_error(path, where, field,
                         tr("store_problem_not_number", value=json.dumps(value, default=str)))
    if not np.isfinite(value):
        raise file_error(path, where, field, tr("store_problem_not_finite", value=value))
    return float(value)


def write_atomically(path: Path, write: Callable[[IO], None], binary: bool = False) -> Path:
    """Write ``path`` through a temporary file in its folder, renamed into place at the end.

    A failure (a full disk, a read-only folder) leaves no partial file and leaves an
    existing ``path`` unchanged.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        mode = "wb" if binary else "w"
        encoding = None if binary else "utf-8"
        with os.fdopen(handle, mode, encoding=encoding, newline=None if binary else "") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
