"""The review session of one viewer: project, slide, reader and the cells Points layer.

Every change goes to the project store first (committed), and only then to the layer, so
the screen never shows a change that is not stored. Points added or removed with napari's
own Points tools (add mode, Delete key, paste) are caught through ``layer.events.data`` and
stored the same way. Moving a point is undone, because the store keeps detected positions.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Callable, Sequence

import numpy as np

from napari_alma.core.i18n import get_language, tr
from napari_alma.core.scheme import ClassScheme
from napari_alma.store.project import Project, default_reader
from napari_alma.store.second_read import end_second_read, start_second_read
from napari_alma.widgets import points_style, relabel

logger = logging.getLogger(__name__)

CELLS_LAYER_NAME = "cells"
DEFAULT_ADD_CLASS = "NIF"

_SESSIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_SESSION_LISTENERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def get_session(viewer) -> ReviewSession | None:
    """Return the review session of ``viewer``, or None when no slide is under review."""
    return _SESSIONS.get(viewer)


def set_session(viewer, session: ReviewSession) -> None:
    """Make ``session`` the review session of ``viewer`` and tell the docks waiting for one."""
    _SESSIONS[viewer] = session
    for callback in list(_SESSION_LISTENERS.get(viewer, [])):
        callback(session)


def on_session(viewer, callback: Callable[[ReviewSession], None]) -> None:
    """Call ``callback(session)`` whenever ``viewer`` gets a new review session."""
    _SESSION_LISTENERS.setdefault(viewer, []).append(callback)


def viewer_language() -> str:
    """Return "en" or "es", the language of the docks.

    In order: ``ALMA_LANG`` if set, the language saved in the user settings, napari's
    language, the system locale.
    """
    if os.environ.get("ALMA_LANG"):
        return get_language()
    from napari_alma.widgets.user_settings import language_override

    saved = language_override()
    if saved:
        return saved
    try:
        from napari.settings import get_settings

        napari_language = str(get_settings().application.language)
    except (ImportError, AttributeError):
        napari_language = ""
    return "es" if napari_language.lower().startswith("es") else get_language()


class ReviewSession:
    """The state of one viewer's review: which project, slide, reader and layers.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer the cells layer is added to.
    project : Project
        The open project store.
    slide_id : str
        The slide under review, registered in ``project``.
    image_layer : napari.layers.Image
        The slide's (multiscale) image; its level-0 ``scale`` is reused for the cells.
    reader : str, optional
        Name recorded with every change; by default the operating-system user.
    language : str, optional
        "en" or "es"; by default from ``ALMA_LANG``, napari's settings or the locale.
    blind : bool
        Start in a blind second read (see :meth:`set_blind`).

    Attributes
    ----------
    blind : bool
        True during a blind second read: the model's classes and the other readers'
        labels must not be shown. The cells layer then carries only this reader's own
        labels (unlabelled cells in a neutral colour), the count uses only them, and any
        dock that shows classes (gallery, agreement) must read this flag and hide them.
    """

    def __init__(self, viewer, project: Project, slide_id: str, image_layer,
                 reader: str | None = None, language: str | None = None,
                 blind: bool = False):
        self.viewer = viewer
        self.project = project
        self.slide_id = slide_id
        self.image_layer = image_layer
        self.reader = reader or default_reader()
        self.language = language or viewer_language()
        self.add_class = DEFAULT_ADD_CLASS if DEFAULT_ADD_CLASS in project.scheme else (
            project.scheme.codes[-1]
        )
        self.blind = blind
        self.cells_layer = None
        self.docks: dict = {}
        self._listeners: list[Callable[[], None]] = []
        self._updating = False
        self._removal_failed = False

    @property
    def scheme(self) -> ClassScheme:
        """The project's class scheme."""
        return self.project.scheme

    @property
    def slide(self) -> dict:
        """The slide's row in the project (path, shape, µm/px, readers)."""
        return self.project.slide(self.slide_id)

    def connect(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after every stored change and refresh."""
        self._listeners.append(callback)

    def notify_changed(self) -> None:
        """Call the listeners after a change that the layer already shows."""
        self._changed()

    def _changed(self) -> None:
        for callback in list(self._listeners):
            callback()

    def set_blind(self, blind: bool) -> None:
        """Start or end this reader's blind second read, log it, and redraw the cells.

        Starting is recorded as the slide event ``start_second_read`` and ending as
        ``end_second_read``. Raises ValueError when the reader is the slide's primary
        reader, since a second read needs another reader.
        """
        if blind:
            start_second_read(self.project, self.slide_id, self.reader)
        else:
            end_second_read(self.project, self.slide_id, self.reader)
        self.blind = blind
        self.refresh()

    # -- the cells layer ------------------------------------------------------------------
    def add_cells_layer(self):
        """Add the cells Points layer to the viewer, filled from the store, and return it."""
        from napari.layers import Points

        size = points_style.point_size(self.slide["mpp"])
        layer = Points(
            np.empty((0, 2)),
            name=CELLS_LAYER_NAME,
            scale=tuple(self.image_layer.scale[-2:]),
            size=size,
            symbol="disc",
            features=points_style.empty_features(),
            feature_defaults=self._new_point_defaults(),
            face_color=points_style.TRANSPARENT,
            border_color=np.asarray(self.scheme[self.add_class].rgba),
            border_width_is_relative=True,
        )
        if hasattr(layer, "units"):  # napari >= 0.5.1: units must match the image layer's
            layer.units = tuple(self.image_layer.units[-2:])
        self.cells_layer = self.viewer.add_layer(layer)
        self.refresh()
        layer.events.data.connect(self._on_layer_data)
        return layer

    def _new_point_defaults(self) -> dict:
        return {"cell_id": -1, "class": self.add_class, "predicted_class": "",
                "confidence": np.nan, "reviewed": True}

    def refresh(self) -> None:
        """Rebuild the cells layer (positions, features, colours) from the project store."""
        table = self.project.cell_table(self.slide_id, reader=self.reader)
        layer = self.cells_layer
        if layer is not None:
            ids = table["cell_id"].to_numpy(int)
            if not np.array_equal(ids, layer.features["cell_id"].to_numpy(int)):
                self._set_positions(table)
            self._write_attributes(table)
        self._changed()

    def _set_positions(self, table) -> None:
        layer = self.cells_layer
        selected = set(self.selected_ids())
        self._updating = True
        try:
            # NOTE: a copy, because pandas hands out read-only arrays and napari edits in place.
            layer.data = np.array(table[["row", "col"]], dtype=float).reshape(-1, 2)
        finally:
            self._updating = False
        ids = table["cell_id"].to_numpy(int)
        layer.selected_data = {i for i, cell_id in enumerate(ids) if cell_id in selected}

    def _write_attributes(self, table) -> None:
        """Set features and colours of the layer's points, which must match ``table``'s rows."""
        layer = self.cells_layer
        if self.blind:
            features = points_style.blind_features(table)
        else:
            features = points_style.layer_features(table)
        layer.features = features
        if len(features):
            layer.face_color = points_style.TRANSPARENT
            layer.border_color = points_style.class_colors(features["class"], self.scheme)
            layer.border_width = points_style.border_widths(features["reviewed"])
        layer.feature_defaults = self._new_point_defaults()
        layer.refresh()

    # -- reading the selection ----------------------------------------------------------
    def selected_ids(self) -> list[int]:
        """Return the cell ids of the selected points, in layer order."""
        layer = self.cells_layer
        if layer is None or not layer.selected_data:
            return []
        ids = layer.features["cell_id"].to_numpy(int)
        return [int(ids[i]) for i in sorted(layer.selected_data) if ids[i] >= 0]

    def select_ids(self, cell_ids: Sequence[int]) -> None:
        """Select the points of ``cell_ids`` in the cells layer."""
        ids = self.cells_layer.features["cell_id"].to_numpy(int)
        rows = np.flatnonzero(np.isin(ids, np.asarray(cell_ids, dtype=int)))
        self.cells_layer.selected_data = set(rows.tolist())

    # -- reader actions: store first, then the layer ------------------------------------
    def apply_class(self, code: str) -> int:
        """Store ``code`` as the reader's class of the selected cells; return how many."""
        ids = self.selected_ids()
        if not ids:
            return 0
        changed = self.project.label_cells(self.slide_id, ids, code, self.reader)
        relabel.show_class(self, ids, code)
        self._changed()
        return changed

    def mark_reviewed_selected(self) -> int:
        """Store the reader confirming the shown class of the selected cells.

        Raises ValueError in a blind read, where no class is shown to confirm: confirming
        would store the hidden prediction as the reader's label.
        """
        if self.blind:
            raise ValueError(tr("second_confirm_blind", self.language))
        ids = self.selected_ids()
        if not ids:
            return 0
        changed = self.project.review_cells(self.slide_id, ids, self.reader)
        relabel.show_reviewed(self, ids)
        self._changed()
        return changed

    def delete_selected(self) -> int:
        """Store the selected cells as deleted (false detections), then remove them."""
        ids = self.selected_ids()
        if not ids:
            return 0
        deleted = self.project.delete_cells(self.slide_id, ids, self.reader)
        self.cells_layer.selected_data = set()
        self.refresh()
        return deleted

    def add_cell_at(self, position: Sequence[float], code: str | None = None) -> int:
        """Store a new cell at a world position, select it and return its id.

        Parameters
        ----------
        position : sequence of float
            World coordinates (the viewer's, e.g. ``viewer.cursor.position``), in µm when
            the slide's µm/px is known; converted with the cells layer's ``world_to_data``.
        code : str, optional
            The class of the new cell; by default ``add_class`` ("not identifiable"),
            which the reader then corrects with a class key.

        Raises
        ------
        ValueError
            When the position lies outside the slide.
        """
        row, col = np.asarray(self.cells_layer.world_to_data(position), float)[-2:]
        self._check_inside(row, col)
        cell_id = self.project.add_cell(
            self.slide_id, row, col, code or self.add_class, self.reader
        )
        self.refresh()
        self.select_ids([cell_id])
        return cell_id

    def _check_inside(self, row: float, col: float) -> None:
        slide = self.slide
        if not (-0.5 <= row < slide["rows"] - 0.5 and -0.5 <= col < slide["cols"] - 0.5):
            raise ValueError(tr("add_outside", self.language, row=row, col=col))

    # -- napari's own Points tools -------------------------------------------------------
    def _on_layer_data(self, event) -> None:
        if self._updating:
            return
        action = str(event.action)
        handlers = {"removing": self._store_removal, "removed": self._after_removal,
                    "added": self._store_added_points, "changed": self._undo_moves}
        handler = handlers.get(action)
        if handler is not None:
            handler(event)

    def _store_removal(self, event) -> None:
        indices = [i for i in event.data_indices if i >= 0]
        ids = self.cells_layer.features["cell_id"].to_numpy(int)[indices]
        ids = [int(c) for c in ids if c >= 0]
        self._removal_failed = False
        if not ids:
            return
        try:
            self.project.delete_cells(self.slide_id, ids, self.reader)
        except Exception as err:  # noqa: BLE001 -- the layer must be put back on any failure
            self._removal_failed = True
            _notify_error(tr("store_failed", self.language, error=err))

    def _after_removal(self, event) -> None:
        if self._removal_failed:
            self._refresh_later()
        else:
            self._changed()

    def _store_added_points(self, event) -> None:
        layer = self.cells_layer
        ids = layer.features["cell_id"].to_numpy(int)
        new_rows = np.flatnonzero(ids < 0)
        try:
            for index in new_rows:
                row, col = layer.data[index][-2:]
                self._check_inside(row, col)
                self.project.add_cell(self.slide_id, row, col, self.add_class, self.reader)
        except Exception as err:  # noqa: BLE001 -- an unstored point must leave the screen
            # The session's own ValueErrors are translated; others get a translated lead.
            _notify_error(str(err) if isinstance(err, ValueError) else
                          tr("store_failed", self.language, error=err))
            self._refresh_later()
            return
        self._write_attributes(self.project.cell_table(self.slide_id, reader=self.reader))
        self._changed()

    def _undo_moves(self, event) -> None:
        layer = self.cells_layer
        table = self.project.cell_table(self.slide_id, reader=self.reader).set_index("cell_id")
        ids = layer.features["cell_id"].to_numpy(int)
        if len(ids) != len(layer.data) or not set(ids) <= set(table.index):
            self._refresh_later()
            return
        stored = np.array(table.loc[ids, ["row", "col"]], dtype=float)
        if not np.allclose(layer.data[:, -2:], stored):
            selected = set(layer.selected_data)
            self._updating = True
            try:
                layer.data = stored
            finally:
                self._updating = False
            layer.selected_data = selected

    def _refresh_later(self) -> None:
        """Rebuild the layer once the current napari event has finished emitting."""
        from qtpy.QtCore import QTimer

        QTimer.singleShot(0, self.refresh)


def _notify_error(message: str) -> None:
    from napari.utils.notifications import show_error

    logger.error("%s", message)
    show_error(message)
