"""The count report as a PDF, drawn with matplotlib's PDF backend (no other converter).

The PDF contains the same content as the HTML page: details, summary, blast bands, warnings,
the table, the bar chart, the slides of a case, conventions and the disclaimer, set on A4
pages as text lines and column-aligned tables.
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from napari_alma.core.i18n import get_language, tr
from napari_alma.report import sections
from napari_alma.report import text as count_text
from napari_alma.report.chart import bar_chart
from napari_alma.report.content import ReportContent
from napari_alma.store.files import write_atomic

A4_IN = (8.27, 11.69)
MARGIN_IN = 0.7
LINE_IN = 0.2
WRAP_CHARS = 95


class _Pages:
    """A4 pages filled top down with text lines; a full page is closed and a new one opened."""

    def __init__(self, pdf: PdfPages, lang: str):
        self.pdf, self.lang, self.figure, self.y = pdf, lang, None, 0.0
        self.count = 0

    def _new_page(self) -> None:
        self.close_page()
        self.figure = Figure(figsize=A4_IN)
        self.y = A4_IN[1] - MARGIN_IN
        self.count += 1

    def close_page(self) -> None:
        if self.figure is not None:
            self.pdf.savefig(self.figure)
            self.figure = None

    def _room(self, lines: int) -> None:
        if self.figure is None or self.y - lines * LINE_IN < MARGIN_IN:
            self._new_page()

    def text(self, value: str, size: float = 9, weight: str = "normal",
             color: str = "#1a1a1a", x_in: float = MARGIN_IN) -> None:
        for line in textwrap.wrap(value, WRAP_CHARS) or [""]:
            self._room(1)
            self.figure.text(x_in / A4_IN[0], self.y / A4_IN[1], line, fontsize=size,
                             fontweight=weight, color=color, va="top")
            self.y -= LINE_IN * size / 9

    def heading(self, value: str) -> None:
        self._room(3)
        self.y -= LINE_IN * 0.6
        self.text(value, size=12, weight="bold")
        self.y -= LINE_IN * 0.3

    def table(self, headers: list[str], rows: list[list[str]], widths: list[float]) -> None:
        """Draw rows as columns starting at ``widths`` cumulative inches from the margin."""
        starts = [MARGIN_IN + sum(widths[:i]) for i in range(len(widths))]
        for index, row in enumerate([headers, *rows]):
            self._room(1)
            for start, value in zip(starts, row):
                self.figure.text(start / A4_IN[0], self.y / A4_IN[1], value, fontsize=8,
                                 fontweight="bold" if index == 0 else "normal", va="top")
            self.y -= LINE_IN * 0.9


def render_pdf(content: ReportContent, lang: str | None = None) -> bytes:
    """Return the report as PDF bytes in ``lang`` ("en" or "es")."""
    lang = get_language(lang)
    buffer = io.BytesIO()
    with PdfPages(buffer, metadata={"Title": tr("report_title", lang),
                                    "Creator": f"napari-alma {content.version}"}) as pdf:
        pages = _Pages(pdf, lang)
        _front(pages, content, lang)
        _tables(pages, content, lang)
        _footer(pages, content, lang)
        pages.close_page()
        if content.differential.total_counted:
            pdf.savefig(bar_chart(content, lang, size_in=A4_IN))
    return buffer.getvalue()


def write_pdf(content: ReportContent, path: str | Path, lang: str | None = None) -> Path:
    """Write the PDF report to ``path`` through a temporary file; return the path."""
    return write_atomic(path, render_pdf(content, lang))


def _front(pages: _Pages, content: ReportContent, lang: str) -> None:
    differential = content.differential
    pages.text(tr("report_title", lang), size=16, weight="bold")
    pages.text(tr("report_disclaimer", lang), weight="bold", color="#8a1c1c")
    for _key, name, value in sections.detail_rows(content, lang):
        pages.text(f"{name}: {value}")

    pages.heading(tr("report_summary", lang))
    for line in (count_text.summary_lines(differential, lang)
                 + count_text.per_100_lines(differential, content.scheme, lang)):
        pages.text(line)
    pages.heading(tr("report_hints_title", lang))
    pages.table([tr("report_who", lang), tr("report_icc", lang)],
                [list(sections.hint_texts(differential, lang))], [3.5, 3.5])
    pages.text(tr("hint_disclaimer", lang))
    pages.heading(tr("report_warnings_title", lang))
    for line in count_text.warning_lines(differential, lang) or [tr("report_no_warnings", lang)]:
        pages.text(f"- {line}", color="#8a4b00")


def _tables(pages: _Pages, content: ReportContent, lang: str) -> None:
    differential, scheme = content.differential, content.scheme
    pages.heading(tr("report_counts_title", lang))
    rows = [[name, code, count, percent, interval] for code, (name, count, percent, interval)
            in zip(differential.counts, count_text.counted_rows(differential, scheme, lang))]
    pages.table([tr("class", lang), tr("report_code", lang), tr("count", lang), "%",
                 tr("ci95", lang)], rows, [3.2, 0.8, 0.8, 0.8, 1.2])
    pages.heading(tr("excluded_title", lang))
    excluded = [[scheme[code].name(lang), code, str(n)]
                for code, n in differential.excluded.items() if n]
    if excluded:
        pages.table([tr("class", lang), tr("report_code", lang), tr("count", lang)], excluded,
                    [3.2, 0.8, 0.8])
    else:
        pages.text(tr("report_excluded_none", lang))
    if content.case_id is not None:
        pages.heading(tr("report_slides_title", lang))
        rows = [[entry.slide_id, str(entry.differential.total_counted),
                 sections.blast_cell(entry.differential),
                 sections.signoff_text(entry.signoff, lang)] for entry in content.slides]
        pages.table([tr("report_slide", lang), tr("report_counted", lang),
                     tr("report_blasts", lang), tr("report_signoff_title", lang)],
                    rows, [1.6, 0.8, 1.4, 3.2])


def _footer(pages: _Pages, content: ReportContent, lang: str) -> None:
    pages.heading(tr("report_conventions", lang))
    for line in sections.convention_lines(content, lang):
        pages.text(line)
    pages.y -= LINE_IN
    pages.text(sections.generated_line(content, lang))
    pages.text(tr("research_use", lang), weight="bold")
