"""The report's bar chart: each counted class's percentage with its 95% interval."""

from __future__ import annotations

import io

import matplotlib
from matplotlib.figure import Figure

from napari_alma.core.i18n import tr
from napari_alma.report.content import ReportContent

# Inches per bar, so that 20 classes stay readable on an A4 page.
BAR_HEIGHT_IN = 0.26
CHART_WIDTH_IN = 7.0


def bar_chart(content: ReportContent, lang: str,
              size_in: tuple[float, float] | None = None) -> Figure:
    """Return a horizontal bar chart of the counted classes, in scheme order, top down.

    ``size_in`` is (width, height) in inches; by default the height follows the number of
    classes. The chart is built on a bare :class:`~matplotlib.figure.Figure` (no pyplot),
    so it is safe to draw in a worker thread.
    """
    differential, scheme = content.differential, content.scheme
    codes = list(differential.counts)
    percents = [differential.percent[code] for code in codes]
    # Rounding can put a bound a hair past the percentage; error bars must not be negative.
    lows = [max(0.0, percent - differential.percent_ci95[code][0])
            for code, percent in zip(codes, percents)]
    highs = [max(0.0, differential.percent_ci95[code][1] - percent)
             for code, percent in zip(codes, percents)]
    positions = list(range(len(codes)))[::-1]

    figure = Figure(figsize=size_in or (CHART_WIDTH_IN, 1.0 + BAR_HEIGHT_IN * len(codes)),
                    dpi=100)
    axes = figure.add_subplot()
    axes.barh(positions, percents, color=[scheme[code].color for code in codes],
              edgecolor="#333333", linewidth=0.5, xerr=[lows, highs],
              error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "#333333"})
    axes.set_yticks(positions, [scheme[code].name(lang) for code in codes], fontsize=8)
    axes.set_xlabel(tr("report_chart_axis", lang), fontsize=9)
    axes.set_title(tr("report_chart_title", lang), fontsize=10)
    axes.set_xlim(0, min(100.0, max([p + h for p, h in zip(percents, highs)] + [10.0]) * 1.05))
    axes.grid(axis="x", linewidth=0.4, alpha=0.5)
    axes.set_axisbelow(True)
    figure.tight_layout()
    return figure


def chart_svg(content: ReportContent, lang: str) -> str:
    """Return the bar chart as an inline ``<svg>`` element, its text kept as text."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "napari-alma"}):
        bar_chart(content, lang).savefig(buffer, format="svg", metadata={"Date": None})
    document = buffer.getvalue()
    return document[document.index("<svg"):]
