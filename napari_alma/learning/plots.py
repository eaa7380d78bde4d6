"""Plots written with a trained model: the validation confusion matrix."""

from __future__ import annotations

import io

import numpy as np

CONFUSION_NAME = "confusion.png"


def confusion_png(confusion, classes: list[str], title: str = "") -> bytes:
    """Render a confusion matrix as PNG bytes, rows true and columns predicted.

    Each row is shaded by its share of the true class (its recall), and every cell shows
    the number of cells. matplotlib's object API is used without pyplot, so this is safe
    off the GUI thread.

    Parameters
    ----------
    confusion : (K, K) int array-like
        Counts; row i is the true class ``classes[i]``.
    classes : list of str
        Class codes.
    title : str
        Figure title.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    counts = np.asarray(confusion, dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    side = max(3.5, 0.45 * len(classes) + 1.5)
    figure = Figure(figsize=(side + 0.8, side), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(len(classes))
    axes.set_xticks(ticks, classes, rotation=90)
    axes.set_yticks(ticks, classes)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for (row, col), value in np.ndenumerate(counts):
        if value:
            colour = "white" if shares[row, col] > 0.6 else "black"
            axes.text(col, row, int(value), ha="center", va="center", fontsize=7, color=colour)
    figure.colorbar(image, ax=axes, fraction=0.046, label="share of the true class")
    if title:
        axes.set_title(title, fontsize=9)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
