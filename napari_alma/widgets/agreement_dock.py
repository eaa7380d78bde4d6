"""The agreement dock: how two readers of a slide agree, and adjudication cell by cell."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from magicgui.widgets import ComboBox, Container, Label, LineEdit, PushButton, Table
from qtpy.QtWidgets import QAbstractItemView, QDockWidget, QHeaderView, QSizePolicy

from napari_alma.core.i18n import tr
from napari_alma.report import agreement_text
from napari_alma.store.project import default_reader
from napari_alma.store.second_read import (
    adjudicate,
    compare_readers,
    default_pair,
    disagreement_table,
    read_labels,
)
from napari_alma.widgets import keys
from napari_alma.widgets.count_dock import _fit_columns, _table_value
from napari_alma.widgets.dock import SessionDock
from napari_alma.widgets.session import get_session, on_session

if TYPE_CHECKING:
    import napari

logger = logging.getLogger(__name__)

# Cell markers that fit across the canvas after going to a disagreement: the cell and
# its neighbours, large enough to judge the morphology.
MARKERS_ACROSS_CANVAS = 8
# Heights in pixels: the disagreement list shows about eight rows before it scrolls.
DISAGREEMENT_TABLE_HEIGHT = 220
SMALL_TABLE_HEIGHT = 150


class AgreementDock(SessionDock):
    """Dock comparing two readers of the slide, and recording adjudicated classes.

    It shows Cohen's kappa overall and per class, the confusion between the readers,
    each reader's blast percentage and the list of disagreements. Clicking a
    disagreement centres the viewer on the cell and selects it; the adjudicator then
    keeps one reader's class or picks another. Nothing is shown while the session is
    in a blind second read (``session.blind``), since it would reveal the other
    reader's classes.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose review session's slide is compared.
    """

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(viewer, "second_dock_agreement")
        lang = self.language
        session = get_session(viewer)
        self.agreement = None
        self.rows = pd.DataFrame()
        self._stale = False
        self._watched_dock = None

        # NOTE: choices are callables because napari calls ``reset_choices`` on magicgui
        # docks whenever a layer changes, which empties a list assigned once.
        self.readers: list[str] = []
        self.reader_a = ComboBox(choices=self._reader_choices, label=tr("second_reader_a", lang))
        self.reader_b = ComboBox(choices=self._reader_choices, label=tr("second_reader_b", lang))
        self.adjudicator = LineEdit(value=session.reader if session else default_reader(),
                                    label=tr("second_adjudicator", lang))
        self.compare_button = PushButton(text=tr("second_compare", lang))
        self.compare_button.changed.connect(self.update_agreement)
        self.reader_a.changed.connect(self.update_agreement)
        self.reader_b.changed.connect(self.update_agreement)
        self.summary = Label(value="")
        self.per_class_title = Label(value=tr("second_per_class_title", lang))
        self.per_class = Table(value=[])
        self.confusion_title = Label(value="")
        self.confusion = Table(value=[])
        self.disagreements_title = Label(value=tr("second_disagreements_title", lang))
        self.disagreements = Table(value=[])
        self.use_a = PushButton(text="")
        self.use_b = PushButton(text="")
        self.use_a.changed.connect(lambda: self._adjudicate_selected("class_a"))
        self.use_b.changed.connect(lambda: self._adjudicate_selected("class_b"))
        self.other_class = ComboBox(choices=self._class_choices,
                                    label=tr("second_adjudicate_as", lang))
        self.adjudicate_button = PushButton(text=tr("second_adjudicate", lang))
        self.adjudicate_button.changed.connect(lambda: self._adjudicate_selected(None))
        self.extend([
            Container(widgets=[self.reader_a, self.reader_b, self.adjudicator]),
            self.compare_button, self.summary,
            self.per_class_title, self.per_class,
            self.confusion_title, self.confusion,
            self.disagreements_title, self.disagreements,
            Container(widgets=[self.use_a, self.use_b], layout="horizontal", labels=False),
            Container(widgets=[self.other_class]), self.adjudicate_button,
        ])
        self._style_widgets()
        self.disagreements.native.cellClicked.connect(lambda row, _column: self.go_to(row))
        if session is not None:
            self._attach(session)
        else:
            self.summary.value = tr("no_session", lang)
        on_session(viewer, self._attach)

    def _style_widgets(self) -> None:
        for label in (self.summary, self.confusion_title, self.per_class_title):
            label.native.setWordWrap(True)
            label.native.setSizePolicy(QSizePolicy.Policy.Preferred,
                                       QSizePolicy.Policy.MinimumExpanding)
        for table in (self.per_class, self.confusion, self.disagreements):
            table.read_only = True
            table.native.setMinimumHeight(SMALL_TABLE_HEIGHT)
        self.disagreements.native.setMinimumHeight(DISAGREEMENT_TABLE_HEIGHT)
        self.disagreements.native.setSelectionBehavior(
            QAbstractItemView.SelectionBehavior.SelectRows)
        self.disagreements.native.setSelectionMode(
            QAbstractItemView.SelectionMode.SingleSelection)
        self.per_class.native.verticalHeader().setVisible(False)
        self.disagreements.native.verticalHeader().setVisible(False)

    def _on_visibility(self, visible: bool) -> None:
        if visible and self._stale:
            self.update_agreement()

    def _reader_choices(self, _widget=None) -> list[str]:
        return self.readers

    def _class_choices(self, _widget=None) -> list[tuple[str, str]]:
        session = get_session(self.viewer)
        if session is None:
            return []
        return [(f"{c.code}: {c.name(self.language)}", c.code) for c in session.scheme.classes]

    def _attach(self, session) -> None:
        self.other_class.reset_choices()
        session.connect(self.refresh)
        self.refresh()

    # -- showing the agreement -------------------------------------------------------
    def refresh(self, *_args) -> None:
        """Update the agreement now, or when the dock is next shown if it is hidden.

        NOTE: comparing readers reads the whole slide from the store, about 1.5 times the
        work of the count dock's update (``python -m benchmarks agreement``). Repeating it
        after every label while the dock sits behind another tab would double the cost.
        """
        if self._behind_another_tab():
            self._stale = True
            return
        self.update_agreement()

    def _behind_another_tab(self) -> bool:
        """Return True when the window is shown but this dock is not (a tab behind another).

        A dock behind another tab still reports ``isVisible()``, but paints nothing. The
        dock's ``visibilityChanged`` signal then brings the update once the tab is raised.
        """
        dock = self.native.parent()
        if not isinstance(dock, QDockWidget) or not self.native.window().isVisible():
            return False
        if self._watched_dock is not dock:
            dock.visibilityChanged.connect(self._on_visibility)
            self._watched_dock = dock
        return self.native.visibleRegion().isEmpty()

    def update_agreement(self, *_args) -> None:
        """Compare the chosen readers again and show the result (nothing while blind)."""
        self._stale = False
        session = get_session(self.viewer)
        if session is None:
            return
        self._clear()
        if session.blind:
            self.summary.value = tr("second_hidden_blind", self.language)
            return
        readings = read_labels(session.project, session.slide_id)
        if not self._choose_readers(session, readings):
            return
        self.agreement = compare_readers(session.project, session.slide_id,
                                         (self.reader_a.value, self.reader_b.value), readings)
        self.rows = disagreement_table(session.project, session.slide_id, self.agreement,
                                       readings)
        self._show(session)

    def _clear(self) -> None:
        self.agreement = None
        self.rows = pd.DataFrame()
        for table in (self.per_class, self.confusion, self.disagreements):
            table.value = []
        self.confusion_title.value = ""
        for button in (self.use_a, self.use_b, self.adjudicate_button):
            button.enabled = False

    def _choose_readers(self, session, readings) -> bool:
        """Offer the readers with labels; return False, with a message, when fewer than two."""
        readers = readings.readers
        if len(readers) < 2:
            self.summary.value = tr("second_need_two", self.language,
                                    readers=", ".join(readers) or tr("second_none",
                                                                     self.language))
            return False
        current = (self.reader_a.value, self.reader_b.value)
        self.readers = readers
        with self.reader_a.changed.blocked(), self.reader_b.changed.blocked():
            self.reader_a.reset_choices()
            self.reader_b.reset_choices()
            if current[0] in readers and current[1] in readers and current[0] != current[1]:
                self.reader_a.value, self.reader_b.value = current
            else:
                self.reader_a.value, self.reader_b.value = default_pair(
                    session.project, session.slide_id, readings)
        return True

    def _show(self, session) -> None:
        lang, agreement, scheme = self.language, self.agreement, session.scheme
        unadjudicated = int((self.rows["adjudicated"] == "").sum())
        self.summary.value = "\n".join([
            *agreement_text.summary_lines(agreement, lang, unadjudicated),
            tr("second_band_source", lang),
        ])
        self.per_class.value = _table_value(agreement_text.per_class_rows(agreement, scheme, lang),
                                            agreement_text.per_class_headers(agreement, lang))
        self.confusion_title.value = tr("second_confusion_title", lang,
                                        reader_a=agreement.reader_a,
                                        reader_b=agreement.reader_b)
        confusion = agreement.confusion
        self.confusion.value = {"data": confusion.to_numpy(int).astype(str).tolist(),
                                "index": list(confusion.index), "columns": list(confusion.columns)}
        self.disagreements.value = _table_value(self._disagreement_rows(scheme), [
            tr("second_col_cell", lang), agreement.reader_a, agreement.reader_b,
            tr("second_col_agreed", lang)])
        _fit_columns(self.per_class.native)
        header = self.disagreements.native.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.use_a.text = tr("second_use_class_of", lang, reader=agreement.reader_a)
        self.use_b.text = tr("second_use_class_of", lang, reader=agreement.reader_b)
        for button in (self.use_a, self.use_b, self.adjudicate_button):
            button.enabled = len(self.rows) > 0

    def _disagreement_rows(self, scheme) -> list[list[str]]:
        def name(code: str) -> str:
            return scheme[code].name(self.language) if code in scheme else code

        return [[str(row.cell_id), name(row.class_a), name(row.class_b),
                 name(row.adjudicated) if row.adjudicated else ""]
                for row in self.rows.itertuples()]

    # -- going to a cell and adjudicating it ----------------------------------------------
    def go_to(self, row: int) -> None:
        """Select disagreement ``row``, centre the viewer on its cell and select the cell."""
        session = get_session(self.viewer)
        if session is None or not 0 <= row < len(self.rows):
            return
        self.disagreements.native.selectRow(row)
        cell = self.rows.iloc[row]
        layer = session.cells_layer
        position = layer.data_to_world(np.array([cell["row"], cell["col"]], dtype=float))
        # napari 0.9 moved the camera to viewer.scene; earlier releases have viewer.camera.
        scene = getattr(self.viewer, "scene", None)
        camera = scene.camera if scene is not None else self.viewer.camera
        camera.center = tuple(float(value) for value in position[-2:])
        camera.zoom = max(camera.zoom, self._cell_zoom(layer))
        session.select_ids([int(cell["cell_id"])])

    def _cell_zoom(self, layer) -> float:
        """Return the zoom (screen pixels per world unit) that shows a few cells across."""
        # napari 0.9 has ``viewer.canvas.size``; earlier releases ``viewer._canvas_size``,
        # both (height, width) in screen pixels. Without either the zoom is left as it is.
        canvas_model = getattr(self.viewer, "canvas", None)
        canvas = getattr(canvas_model, "size", None) or getattr(self.viewer, "_canvas_size", None)
        marker_world = float(np.max(layer.size)) * float(np.max(layer.scale[-2:]))
        if not canvas or marker_world <= 0:
            return 0.0
        return min(canvas) / (MARKERS_ACROSS_CANVAS * marker_world)

    def selected_row(self) -> int | None:
        """Return the index of the selected disagreement, or None."""
        rows = self.disagreements.native.selectionModel().selectedRows()
        return rows[0].row() if rows else None

    def _adjudicate_selected(self, column: str | None) -> None:
        """Adjudicate the selected disagreement, then go to the next open one.

        The agreed class is the one reader ``column`` gave, or with ``column`` None the
        class picked in the list.
        """
        session = get_session(self.viewer)
        row = self.selected_row()
        if session is None or row is None:
            _notify(tr("second_pick_disagreement", self.language))
            return
        cell = self.rows.iloc[row]
        code = cell[column] if column else self.other_class.value
        adjudicator = self.adjudicator.value.strip() or default_reader()
        stored = keys.run_action(session, adjudicate, session.project, session.slide_id,
                                 [int(cell["cell_id"])], code, adjudicator)
        if not stored:
            return
        _notify(tr("second_adjudicated", self.language, cell=int(cell["cell_id"]),
                   name=session.scheme[code].name(self.language), reader=adjudicator))
        session.refresh()  # the count dock and this dock recount
        self.go_to(self._next_open_row(row))

    def _next_open_row(self, after: int) -> int:
        """Return the first unadjudicated disagreement after row ``after``, else ``after``."""
        open_rows = np.flatnonzero(self.rows["adjudicated"].to_numpy() == "")
        later = open_rows[open_rows > after]
        if len(later):
            return int(later[0])
        return int(open_rows[0]) if len(open_rows) else min(after, len(self.rows) - 1)


def _notify(message: str) -> None:
    from napari.utils.notifications import show_info

    show_info(message)

