"""Time reclassifying one cell among many shown in napari, beside napari's naive way.

``python -m benchmarks reclassify [--cells 100000] [--repeats 30]`` builds a project with
that many predicted cells on a synthetic slide, opens it in a napari viewer (under
``xvfb-run`` without a display) with the review docks, then times, per reclassified
cell (median and 90th percentile, in ms):

- ``store_commit``: ``Project.label_cells`` of one cell, committed durably
  (WAL, ``synchronous=FULL``), and the same with ``synchronous=NORMAL`` for comparison;
- ``layer_update``: the in-place update of the point's features, colour and marker;
- ``count``: the differential from the layer's features;
- ``docks``: the count and queue docks' refresh after a change (count included);
- ``apply_class``: all of it through ``ReviewSession.apply_class``, as a key press does;
- baselines: ``naive_layer`` reassigns the layer's whole features table and colours
  (napari's documented way), and ``full_refresh`` is the former path: commit, the whole
  cell table read back from SQLite, features reassigned and the count from SQLite.

The time to draw the next frame is not included: that is the GPU's, and Xvfb has none.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._common import emit, machine_info

MPP = 0.25
CODES = ["NGS", "LYT", "EBO", "BLA", "MON", "EOS", "PMO", "MYB"]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks reclassify")
    parser.add_argument("--cells", type=int, default=100_000, help="cells on the slide")
    parser.add_argument("--repeats", type=int, default=30, help="reclassifications timed")
    parser.add_argument("--baseline-repeats", type=int, default=5,
                        help="repeats of the two slow baselines")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        emit(run(Path(folder), args.cells, args.repeats, args.baseline_repeats))
    return 0


def run(folder: Path, n_cells: int, repeats: int, baseline_repeats: int) -> dict:
    started = time.perf_counter()
    project, slide_id = build_project(folder, n_cells)
    setup_s = time.perf_counter() - started
    viewer, session = open_review(project, slide_id)
    rng = np.random.default_rng(1)
    cells = rng.choice(session.cells_layer.features["cell_id"].to_numpy(int),
                       size=repeats + 3 * baseline_repeats, replace=False).tolist()
    figures = {
        "store_commit": _time(lambda c: project.label_cells(slide_id, [c], "BLA", "bench"),
                              cells[:repeats]),
        "store_commit_sync_normal": _time_sync_normal(project, slide_id, cells[:repeats]),
        "layer_update": _time_layer(session, cells[:repeats]),
        "count": _time(lambda c: _count(session), cells[:repeats]),
        "docks": _time_docks(session, cells[:repeats]),
        "apply_class": _time_apply(session, cells[:repeats]),
    }
    rest = cells[repeats:]
    figures["naive_layer"] = _time(lambda c: naive_update(session, c),
                                   rest[:baseline_repeats])
    figures["full_refresh"] = _time(lambda c: full_refresh(session, c),
                                    rest[baseline_repeats : 2 * baseline_repeats])
    viewer.close()
    project.close()
    apply_median = figures["apply_class"]["median_ms"]
    return {
        "benchmark": "reclassify",
        "cells": n_cells,
        "repeats": repeats,
        "ms": figures,
        "speedup_vs_naive_layer": round(figures["naive_layer"]["median_ms"] / apply_median, 1),
        "speedup_vs_full_refresh": round(figures["full_refresh"]["median_ms"] / apply_median,
                                         1),
        "within_one_frame_16ms": apply_median <= 16.0,
        "setup_s": round(setup_s, 1),
        "machine": machine_info(("numpy", "pandas", "napari", "vispy")),
    }


def build_project(folder: Path, n_cells: int):
    """Return a project with ``n_cells`` predicted cells on a synthetic 20,000-px slide."""
    from napari_alma.store.project import Project

    project = Project(folder / "project")
    side = 20_000
    slide_id = project.register_slide(folder / "synthetic.tif", "synthetic", (side, side), MPP)
    rng = np.random.default_rng(0)
    # A jittered grid keeps every cell farther than the matching radius from the others.
    step = side / np.ceil(np.sqrt(n_cells))
    grid = np.stack(np.meshgrid(np.arange(step / 2, side, step),
                                np.arange(step / 2, side, step)), -1).reshape(-1, 2)[:n_cells]
    positions = grid + rng.uniform(-step / 4, step / 4, grid.shape)
    probabilities = rng.dirichlet(np.ones(len(CODES)) * 0.3, size=n_cells)
    project.add_predictions(slide_id, positions, probabilities, CODES, "bench", radius=1.0)
    return project, slide_id


def open_review(project, slide_id):
    """Open the slide in a napari viewer with the review session and its docks."""
    import napari

    from napari_alma.widgets.launch import dock_widgets
    from napari_alma.widgets.session import ReviewSession, set_session

    viewer = napari.Viewer(show=False)
    # The cells layer takes the image's scale; the image itself only has to exist.
    image = viewer.add_image(np.zeros((2000, 2000), np.uint8), scale=(MPP, MPP))
    session = ReviewSession(viewer, project, slide_id, image, reader="bench", language="en")
    session.add_cells_layer()
    set_session(viewer, session)
    session.docks = dock_widgets(viewer, session)
    return viewer, session


def naive_update(session, cell_id: int) -> None:
    """Reclassify one point the way napari's API invites: reassign whole arrays."""
    from napari_alma.widgets import points_style

    layer = session.cells_layer
    features = layer.features.copy()
    features.loc[features["cell_id"] == cell_id, ["class", "reviewed"]] = ["LYT", True]
    layer.features = features
    layer.border_color = points_style.class_colors(features["class"], session.scheme)
    layer.border_width = points_style.border_widths(features["reviewed"])


def full_refresh(session, cell_id: int) -> None:
    """Reclassify as before the in-place update: store, cell table, features, SQL count."""
    session.project.label_cells(session.slide_id, [cell_id], "MON", session.reader)
    session.refresh()
    session.project.count(session.slide_id, reader=session.reader)


def _count(session):
    from napari_alma.widgets import relabel

    return relabel.count_shown(session, target=500)


def _time_layer(session, cells):
    from napari_alma.widgets import relabel

    return _time(lambda c: relabel.show_class(session, [c], "EOS"), cells)


def _time_docks(session, cells):
    from napari_alma.widgets import relabel

    def refresh(cell_id):
        relabel.show_class(session, [cell_id], "MYB")
        start = time.perf_counter()
        session.notify_changed()
        return time.perf_counter() - start

    return _summary([refresh(c) for c in cells])


def _time_apply(session, cells):
    def apply(cell_id):
        session.select_ids([cell_id])
        start = time.perf_counter()
        session.apply_class("PMO")
        return time.perf_counter() - start

    return _summary([apply(c) for c in cells])


def _time_sync_normal(project, slide_id, cells):
    project._connection.execute("PRAGMA synchronous=NORMAL")
    try:
        return _time(lambda c: project.label_cells(slide_id, [c], "EBO", "bench"), cells)
    finally:
        project._connection.execute("PRAGMA synchronous=FULL")


def _time(action, cells) -> dict:
    durations = []
    for cell_id in cells:
        start = time.perf_counter()
        action(int(cell_id))
        durations.append(time.perf_counter() - start)
    return _summary(durations)


def _summary(durations) -> dict:
    ms = sorted(d * 1000 for d in durations)
    return {"median_ms": round(statistics.median(ms), 2),
            "p90_ms": round(ms[int(0.9 * (len(ms) - 1))], 2), "n": len(ms)}
