"""The count dock: the live differential of the slide under review."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from magicgui.widgets import ComboBox, Label, PushButton, Table
from qtpy.QtWidgets import QSizePolicy

from napari_alma.core.counting import DEFAULT_TARGET
from napari_alma.core.i18n import tr
from napari_alma.report import text as count_text
from napari_alma.widgets import relabel
from napari_alma.widgets.dock import SessionDock
from napari_alma.widgets.session import get_session, on_session

if TYPE_CHECKING:
    import napari

logger = logging.getLogger(__name__)

# 100 and 200 are the usual blood differentials; 300 and 500 the ICSH marrow counts.
TARGETS = (100, 200, 300, 500)
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

        target = session.scheme.default_target if session is not None else DEFAULT_TARGET
        self.target = ComboBox(choices=TARGETS, value=target if target in TARGETS else (
            DEFAULT_TARGET), label=tr("target", lang))
        self.target.changed.connect(self.refresh)
        self.summary = Label(value="")
        self.table = Table(value=[], columns=self._headers())
        self.excluded_title = Label(value=tr("excluded_title", lang))
        self.excluded = Table(value=[], columns=[tr("class", lang), tr("count", lang)])
        self.warnings = Label(value="")
        self.hints = Label(value="")
        self.research_use = Label(value=tr("research_use", lang))
        self.report_button = PushButton(text=tr("report_button", lang))
        self.report_status = Label(value="")
        self.report_button.changed.connect(self.save_report)
        self.differential = None
        self.worker = None
        self.extend([self.target, self.summary, self.table, self.excluded_title, self.excluded,
                     self.warnings, self.hints, self.report_button, self.report_status,
                     self.research_use])
        for label in (self.summary, self.warnings, self.hints, self.research_use,
                      self.report_status):
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
        # A blind reader's layer holds only their own labels, never the hidden predictions.
        differential = relabel.count_shown(session, target=int(self.target.value))
        self.differential = differential
        self._show(differential, session.scheme)

    def _show(self, differential, scheme) -> None:
        lang = self.language
        self.summary.value = "\n".join(count_text.summary_lines(differential, lang)
                                       + count_text.per_100_lines(differential, scheme, lang))
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

    def save_report(self, *_args):
        """Ask where to save the slide's HTML report and write it in a worker thread.

        Returns the worker, or None when there is no slide, a report is being written, or
        the reader cancelled the file dialog.
        """
        from napari.qt.threading import create_worker

        session = get_session(self.viewer)
        if session is None or self.worker is not None:
            return None
        suggested = session.project.folder / f"report-{session.slide_id}.html"
        path = ask_report_path(self.native, tr("report_dialog_title", self.language), suggested)
        if not path:
            return None
        self.worker = create_worker(
            write_slide_report, session.project.folder, session.slide_id, Path(path),
            session.reader, int(self.target.value), self.language,
            _start_thread=False, _ignore_errors=True,
        )
        self.worker.returned.connect(self._report_saved)
        self.worker.errored.connect(self._report_failed)
        self.worker.finished.connect(self._report_idle)
        self.report_button.enabled = False
        self.report_status.value = tr("report_writing", self.language)
        self.worker.start()
        return self.worker

    def _report_saved(self, path: Path) -> None:
        from napari.utils.notifications import show_info

        self.report_status.value = tr("report_saved", self.language, path=path)
        show_info(self.report_status.value)

    def _report_failed(self, error: Exception) -> None:
        from napari.utils.notifications import show_error

        logger.error("Writing the report failed: %s", error)
        self.report_status.value = tr("report_failed", self.language, error=error)
        show_error(self.report_status.value)

    def _report_idle(self) -> None:
        self.worker = None
        self.report_button.enabled = True


def ask_report_path(parent, title: str, suggested: Path) -> str:
    """Return the HTML file the reader picks in a save dialog, or "" when cancelled."""
    from qtpy.QtWidgets import QFileDialog

    path, _filter = QFileDialog.getSaveFileName(parent, title, str(suggested),
                                                "HTML (*.html *.htm)")
    return path


def write_slide_report(folder: Path, slide_id: str, path: Path, reader: str, target: int,
                       lang: str) -> Path:
    """Write a slide's HTML report with a project connection of its own; return the path.

    It runs off the GUI thread, and SQLite connections belong to the thread that opened
    them, so the project is opened again here.
    """
    from napari_alma.report.content import slide_report
    from napari_alma.report.html import write_html
    from napari_alma.store.project import Project

    with Project(folder) as project:
        content = slide_report(project, slide_id, reader=reader, target=target)
        return write_html(content, path, lang=lang)


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
