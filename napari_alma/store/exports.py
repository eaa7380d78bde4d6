"""Tabular exports of a project: per-cell CSV and per-slide differential CSV."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd

from napari_alma.store.project import Project

CELL_CSV_COLUMNS = [
    "slide_id", "cell_id", "row", "col", "row_um", "col_um", "class", "predicted_class",
    "confidence", "source", "label_source", "reader", "updated_at", "model_version",
]


def cells_frame(project: Project, reader: str | None = None) -> pd.DataFrame:
    """Return one row per cell of every slide, in the per-cell CSV's columns.

    ``class`` is empty for a cell no reader has labelled; ``source`` is "model" or "added".
    """
    frames = [project.cell_table(slide_id, reader=reader)[CELL_CSV_COLUMNS]
              for slide_id in project.slides()["slide_id"]]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=CELL_CSV_COLUMNS)


def differential_frame(project: Project, **settings) -> pd.DataFrame:
    """Return one row per slide and class: count, percent and its 95% interval."""
    rows = []
    for slide_id in project.slides()["slide_id"]:
        differential = project.count(slide_id, **settings)
        for code, count in {**differential.counts, **differential.excluded}.items():
            low, high = differential.percent_ci95.get(code, (None, None))
            rows.append({
                "slide_id": slide_id, "class": code, "count": count,
                "counted_in_ndc": code in differential.counts,
                "percent": differential.percent.get(code), "ci95_low": low, "ci95_high": high,
                "total_counted": differential.total_counted,
                "blast_percent": differential.blast_percent, "me_ratio": differential.me_ratio,
                "unreviewed": differential.unreviewed,
            })
    return pd.DataFrame(rows)


def write_cell_csv(project: Project, out_dir: Path, reader: str | None = None) -> Path:
    """Write ``cells.csv`` into ``out_dir``; return its path."""
    return _write_csv(cells_frame(project, reader), Path(out_dir) / "cells.csv")


def write_differential_csv(project: Project, out_dir: Path, **settings) -> Path:
    """Write ``differential.csv`` into ``out_dir``; return its path."""
    return _write_csv(differential_frame(project, **settings), Path(out_dir) / "differential.csv")


def _write_csv(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            frame.to_csv(stream, index=False)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
