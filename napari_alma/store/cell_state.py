"""The current state of a few cells, read with indexed queries instead of a whole cell table.

Storing one correction must not read every cell of a 100,000-cell slide, so the writers
(labelling, undo) look up only the cells they change. The rules match
:func:`napari_alma.store.labels.derive_cell_table`: a reader's class is the ``new_class``
of that reader's newest label event (``unlabel`` leaves it empty), and the prediction is
the newest by ``created_at``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from napari_alma.store.labels import LABEL_ACTIONS

# SQLite allows 999 bound parameters in old builds; the slide id takes one.
_CHUNK = 900


@dataclass(frozen=True)
class CellState:
    """The current state of one cell for one reader.

    ``label`` is the reader's class ("" while unreviewed), ``predicted`` the newest
    prediction's class ("" for a cell added by hand) and ``model_version`` its model.
    """

    label: str
    predicted: str
    model_version: str

    @property
    def shown(self) -> str:
        """The class the cell counts as: the reader's label, else the prediction."""
        return self.label or self.predicted


def cell_states(project, slide_id: str, cell_ids: Sequence[int], reader: str
                ) -> dict[int, CellState]:
    """Return the state of each existing cell of ``cell_ids`` for ``reader`` in ``project``."""
    return current_states(project._connection, slide_id, cell_ids, reader)


def current_states(
    db: sqlite3.Connection, slide_id: str, cell_ids: Sequence[int], reader: str
) -> dict[int, CellState]:
    """Return the state of each existing cell of ``cell_ids`` for ``reader``.

    Cells that the slide does not have are missing from the result.
    """
    unique = sorted({int(c) for c in cell_ids})
    states: dict[int, CellState] = {}
    for start in range(0, len(unique), _CHUNK):
        states.update(_chunk_states(db, slide_id, unique[start : start + _CHUNK], reader))
    return states


def _chunk_states(db, slide_id: str, cell_ids: list[int], reader: str) -> dict[int, CellState]:
    marks = ",".join("?" * len(cell_ids))
    existing = [row[0] for row in db.execute(
        f"SELECT cell_id FROM cells WHERE slide_id=? AND cell_id IN ({marks})",
        (slide_id, *cell_ids),
    )]
    predictions: dict[int, tuple[str, str]] = {}
    for cell_id, code, version in db.execute(
        "SELECT cell_id, class, model_version FROM predictions WHERE slide_id=? AND cell_id IN"
        f" ({marks}) ORDER BY created_at",
        (slide_id, *cell_ids),
    ):
        predictions[cell_id] = (code, version)
    labels: dict[int, str] = {}
    actions = ",".join("?" * len(LABEL_ACTIONS))
    for cell_id, new_class in db.execute(
        f"SELECT cell_id, new_class FROM events WHERE slide_id=? AND cell_id IN ({marks})"
        f" AND reader=? AND action IN ({actions}) ORDER BY event_id",
        (slide_id, *cell_ids, reader, *LABEL_ACTIONS),
    ):
        labels[cell_id] = new_class or ""
    return {
        cell_id: CellState(labels.get(cell_id, ""), *predictions.get(cell_id, ("", "")))
        for cell_id in existing
    }
