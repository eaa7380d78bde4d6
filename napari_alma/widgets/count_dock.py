"""The count dock: the live differential of the slide under review."""

from __future__ import annotations

from typing import TYPE_CHECKING

from magicgui.widgets import ComboBox, Label, Table
from qtpy.QtWidgets import QSizePolicy

from napari_alma.core.counting import DEFAULT_TARGET
from napari_alma.core.i18n import tr
from napari_alma.report import text as count_text
from napari_alma.widgets import relabel
from napari_alma.widgets.dock import SessionDock
from napari_alma.widgets.session import get_session, on_session

if TYPE_CHECKING:
    import napari


TARGETS = (300, 500)
# Room for about ten class rows before the table scrolls, in pixels.
TABLE_MIN_HEIGHT = 300


class CountDock(SessionDock):
    """Dock showing counts, percentages with 95% intervals, blast %, M:E and warnings.

    It recounts from the project store after every change the review session reports.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose review session is counted.
    """

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(viewer, "dock_count")
        session = get_session(viewer)
        lang = self.language

        self.target = ComboBox(choices=TARGETS, value=DEFAULT_TARGET,
                               label=tr("target", lang))
        self.target.changed.connect(self.refresh)
        self.summary = Label(value="")
        self.table = Table(value=[], columns=self._headers())
        self.excluded_title = Label(value=tr("excluded_title", lang))
        self.excluded = Table(value=[], columns=[tr("class", lang), tr("count", lang)])
        self.warnings = Label(value="")
        self.hints = Label(value="")
        self.research_use = Label(value=tr("research_use", lang))
        self.differential = None
        self.extend([self.target, self.summary, self.table, self.excluded_title, self.excluded,
                     self.warnings, self.hints, self.research_use])
        for label in (self.summary, self.warnings, self.hints, self.research_use):
            label.native.setWordWrap(True)
            # NOTE: without a minimum-expanding height, Qt sizes a wrapped label for its
            # unwrapped height and clips the last lines.
            label.native.setSizePolicy(QSizePolicy.Policy.Preferred,
                                       QSizePolicy.Policy.MinimumExpanding)
        for table in (self.table, self.excluded):
            table.native.verticalHeader().setVisible(False)
            table.read_only = True
        self.table.native.setMinimumHeight(TABLE_MIN_HEIGHT)
        if session is not None:
            self._attach(session)
        else:
            self.refresh()
        on_session(viewer, self._attach)

    def _headers(self) -> list[str]:
        return [tr(key, self.language) for key in ("class", "count", "percent_ci95")]

    def _attach(self, session) -> None:
        session.connect(self.refresh)
        self.refresh()

    def refresh(self, *_args) -> None:
        """Recount the session's slide from the store and show the result."""
        session = get_session(self.viewer)
        if session is None:
            self.summary.value = tr("no_session", self.language)
            return
        differential = relabel.count_shown(session, target=int(self.target.value))
        self.differential = differential
        self._show(differential, session.scheme)

    def _show(self, differential, scheme) -> None:
        lang = self.language
        self.summary.value = "\n".join(count_text.summary_lines(differential, lang))
        # NOTE: percent and interval share one text cell because magicgui's Table turns a
        # numeric-looking text back into a float, shown as "10.0000".
        rows = [[name, count, f"{percent} ({interval})"]
                for name, count, percent, interval in
                count_text.counted_rows(differential, scheme, lang)]
        _set_rows(self.table, rows, self._headers())
        _set_rows(self.excluded, count_text.excluded_rows(differential, scheme, lang),
                  [tr("class", lang), tr("count", lang)])
        self.warnings.value = "\n".join(count_text.warning_lines(differential, lang))
        self.hints.value = "\n".join(count_text.hint_lines(differential, lang))


def _fit_columns(table) -> None:
    """Size the numeric columns to their text; the class name column takes what is left."""
    from qtpy.QtWidgets import QHeaderView

    header = table.horizontalHeader()
    for column in range(table.columnCount()):
        mode = QHeaderView.ResizeMode.Stretch if column == 0 else (
            QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(column, mode)


def _set_rows(table, rows: list[list], columns: list[str]) -> None:
    """Show ``rows`` in a magicgui ``Table``, rewriting only the cell texts when it can.

    NOTE: assigning ``Table.value`` rebuilds every cell item, a few milliseconds for the
    26 class rows, which a reclassification repeats; the shape rarely changes.
    """
    native = table.native
    items = [[native.item(i, j) for j in range(len(columns))] for i in range(len(rows))]
    same_shape = native.rowCount() == len(rows) and native.columnCount() == len(columns)
    if not same_shape or any(item is None for row in items for item in row):
        table.value = _table_value(rows, columns)
        _fit_columns(native)
        return
    for row_items, row in zip(items, rows):
        for item, value in zip(row_items, row):
            text = str(value)
            if item.text() != text:
                item.setText(text)


def _table_value(rows: list[list[str]], columns: list[str]) -> dict:
    """Return a magicgui ``Table`` value in its split form (data, index, columns)."""
    return {"data": rows, "index": list(range(len(rows))), "columns": columns}
