"""Cost of updating the cell gallery after one reclassification, beside a full model reset.

Builds the gallery's list model and view (no napari, no store) for N synthetic cells on
the bundled BCCD sample, then moves one cell to another class R times. Each update is
timed two ways: the gallery's own ``set_cells`` (rows moved, inserted or repainted) and
the naive way, a model reset, both followed by a repaint of the view. Needs a display:
run ``xvfb-run -a python -m benchmarks gallery [--cells 10000] [--repeats 30]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd

from benchmarks._common import emit, machine_info

CLASSES = ("NGS", "LYT", "EOS", "MON", "OTH")


def synthetic_items(cells: int, shape: tuple[int, int], seed: int = 0) -> pd.DataFrame:
    """Return gallery items for ``cells`` random cells with random class probabilities."""
    import json

    from napari_alma.widgets import gallery_data

    rng = np.random.default_rng(seed)
    positions = rng.uniform((0, 0), (shape[0] - 1, shape[1] - 1), size=(cells, 2))
    probabilities = rng.dirichlet(np.ones(len(CLASSES)), size=cells)
    best = probabilities.argmax(axis=1)
    features = pd.DataFrame({
        "cell_id": np.arange(cells),
        "class": np.asarray(CLASSES)[best],
        "predicted_class": np.asarray(CLASSES)[best],
        "confidence": probabilities.max(axis=1),
        "reviewed": np.zeros(cells, dtype=bool),
    })
    texts = [json.dumps(dict(zip(CLASSES, row.round(5).tolist()))) for row in probabilities]
    scores = gallery_data.uncertainty_table(features["cell_id"], texts)
    return gallery_data.gallery_items(features, positions, scores)


def time_updates(model, view, items, scheme, repeats: int, reset: bool) -> list[float]:
    """Move one cell per repeat to another class and return each update's seconds."""
    from napari_alma.widgets import gallery_data
    from napari_alma.widgets.gallery_model import SHOWN_COLUMNS

    rng = np.random.default_rng(1)
    seconds = []
    for _ in range(repeats):
        items = items.copy()
        cell_id = int(rng.integers(len(items)))
        items.loc[cell_id, "class"] = "BLA"
        items.loc[cell_id, "reviewed"] = True
        start = time.perf_counter()
        ids = gallery_data.order_cells(items, scheme)
        if reset:
            model.items = items
            model._columns = {name: items[name].to_numpy() for name in SHOWN_COLUMNS}
            model._reset([int(c) for c in ids])
        else:
            model.set_cells(ids, items)
        # Qt lays the view out again on the next event-loop pass; both ways include it.
        view.doItemsLayout()
        view.viewport().repaint()
        seconds.append(time.perf_counter() - start)
    return seconds


def main(argv: list[str] | None = None) -> int:
    """Print one JSON record with the median update times and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=10_000, help="number of cells (default 10000)")
    parser.add_argument("--repeats", type=int, default=30,
                        help="updates timed per way (default 30)")
    args = parser.parse_args(argv)

    from qtpy.QtWidgets import QApplication, QWidget

    from napari_alma import samples
    from napari_alma.core.scheme import default_scheme
    from napari_alma.slides.reader import open_slide
    from napari_alma.widgets.gallery_model import CropCache, GalleryModel
    from napari_alma.widgets.gallery_views import CropDelegate, GalleryView

    app = QApplication.instance() or QApplication([])
    scheme = default_scheme()
    image = open_slide(samples.sample_path("bccd_field.jpg")).levels[0]
    items = synthetic_items(args.cells, image.shape[:2])
    crops = CropCache(image, 0.25, 20.0, 72)
    model = GalleryModel(crops, lambda item: "")
    view = GalleryView()
    view.setItemDelegate(CropDelegate(view, scheme))
    view.setModel(model)
    view.resize(440, 700)
    view.show()

    from napari_alma.widgets import gallery_data

    start = time.perf_counter()
    model.set_cells(gallery_data.order_cells(items, scheme), items)
    app.processEvents()
    build_seconds = time.perf_counter() - start
    incremental = time_updates(model, view, items, scheme, args.repeats, reset=False)
    naive = time_updates(model, view, items, scheme, args.repeats, reset=True)
    crops.cancel_pending()
    crops.wait()
    emit({
        "benchmark": "gallery",
        "cells": args.cells,
        "repeats": args.repeats,
        "build_ms": round(1000 * build_seconds, 1),
        "update_median_ms": round(1000 * statistics.median(incremental), 2),
        "reset_median_ms": round(1000 * statistics.median(naive), 2),
        "reset_over_update": round(statistics.median(naive) / statistics.median(incremental), 2),
        "model_rows": model.rowCount(),
        "widgets": len(view.findChildren(QWidget)),
        "crops_read": crops.reads,
        "machine": machine_info(("numpy", "pandas", "qtpy")),
    })
    return 0
