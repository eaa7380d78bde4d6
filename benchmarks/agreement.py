"""Time the reader comparison and the consensus count beside a one-reader count.

``python -m benchmarks agreement [--sizes 1000 10000] [--repeats 3]``

Each size builds a project store in a temporary folder with that many cells, predicted
by a fake model, and labelled in full by two readers who agree on about 60% of the cells
(random classes, seed 0). Positions and classes are synthetic, because only the sizes
matter here. Three operations are timed, each the median of ``--repeats`` runs:

- ``count_one_reader``: ``Project.count(slide, reader=A)``, the count the review session
  already ran before second reads existed. This is the baseline.
- ``count_consensus``: ``Project.count(slide)``, which adds adjudicated classes and the
  number of open disagreements.
- ``agreement``: what the agreement dock runs on each update (read every reader's
  labels, compare two readers, list the disagreements).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._common import emit, machine_info

CODES = ("BLA", "LYT", "EBO", "NGS", "MON")
AGREEMENT_RATE = 0.6


def build_project(folder: Path, size: int):
    """Return a project and slide id with ``size`` cells labelled by readers "a" and "b"."""
    from napari_alma.store.project import Project

    project = Project(folder)
    slide_id = project.register_slide("/bench/slide.tif", f"bench-{size}", (50_000, 50_000),
                                      mpp=0.25)
    rng = np.random.default_rng(0)
    positions = rng.uniform(0, 50_000, size=(size, 2))
    probabilities = rng.dirichlet(np.ones(3), size=size)
    project.add_predictions(slide_id, positions, probabilities, ["NGS", "LYT", "EBO"], "bench",
                            radius=0.0)
    cell_ids = project.cell_table(slide_id)["cell_id"].to_numpy()
    first = rng.choice(CODES, size=len(cell_ids))
    second = np.where(rng.random(len(cell_ids)) < AGREEMENT_RATE, first,
                      rng.choice(CODES, size=len(cell_ids)))
    for reader, labels in (("a", first), ("b", second)):
        for code in CODES:
            project.label_cells(slide_id, cell_ids[labels == code].tolist(), code, reader)
    return project, slide_id


def median_seconds(operation, repeats: int) -> float:
    """Return the median wall time of ``operation()`` over ``repeats`` runs, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        operation()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_size(size: int, repeats: int) -> dict:
    """Time the three operations on a store of ``size`` cells; return the record."""
    from napari_alma.store.second_read import compare_readers, disagreement_table, read_labels

    def agreement() -> None:
        readings = read_labels(project, slide_id)
        result = compare_readers(project, slide_id, ("a", "b"), readings)
        disagreement_table(project, slide_id, result, readings)

    with tempfile.TemporaryDirectory() as folder:
        project, slide_id = build_project(Path(folder) / "project", size)
        try:
            baseline = median_seconds(lambda: project.count(slide_id, reader="a"), repeats)
            consensus = median_seconds(lambda: project.count(slide_id), repeats)
            compare = median_seconds(agreement, repeats)
        finally:
            project.close()
    return {
        "benchmark": "agreement",
        "cells": size,
        "readers": 2,
        "repeats": repeats,
        "count_one_reader_s": round(baseline, 4),
        "count_consensus_s": round(consensus, 4),
        "agreement_s": round(compare, 4),
        "count_consensus_ratio": round(consensus / baseline, 2),
        "agreement_ratio": round(compare / baseline, 2),
        "machine": machine_info(("numpy", "pandas")),
    }


def main(argv: list[str]) -> int:
    """Run the benchmark for each ``--sizes`` value and print one JSON object per size."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks agreement")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000],
                        help="cells per slide (default 1000 10000); larger stores take "
                        "long to build")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per operation")
    args = parser.parse_args(argv)
    for size in args.sizes:
        emit(run_size(size, args.repeats))
    return 0
