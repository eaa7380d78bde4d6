"""Measure the project store: durable commits, reopening, the cell table and exports.

``python -m benchmarks store [--cells N] [--export-cells M] [--changes K] [--rebuild]``
builds two projects once, cached under ``out/benchmarks/store/``. One has a slide of N
model cells (default 1,000,000), the other a slide of M cells (default 100,000) for the
exports. Each cell has a prediction over ten classes, and 1% of the cells are labelled.
It then prints one JSON object per measurement:

- ``commit``: K single-cell label changes, each its own durable (fsync'ed) transaction,
  as changes per second; baseline: the same changes on a project of 1,000 cells, and a bare
  SQLite insert per transaction with the same settings (the disk's commit floor).
- ``reopen``: opening the N-cell project, and the first ``cell_table`` of its slide;
  baseline: the cell table as the first release built it (every prediction row read into
  pandas and the newest picked there).
- ``export``: each export format on the M-cell slide; baseline: reading its cell table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._common import REPO_ROOT, emit, machine_info

PACKAGES = ("numpy", "pandas", "pyarrow")
CLASSES = ["BLA", "PMO", "MYB", "MMZ", "NGB", "NGS", "EOS", "MON", "LYT", "EBO"]
LABELLED_FRACTION = 0.01
SMALL_CELLS = 1_000


def main(argv: list[str]) -> int:
    """Run the store benchmark. The module docstring lists the figures."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks store")
    parser.add_argument("--cells", type=int, default=1_000_000, help="cells of the big slide")
    parser.add_argument("--export-cells", type=int, default=100_000,
                        help="cells of the exported slide")
    parser.add_argument("--changes", type=int, default=200, help="label changes to commit")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached projects")
    args = parser.parse_args(argv)
    machine = machine_info(PACKAGES)
    cache = REPO_ROOT / "out" / "benchmarks" / "store"
    big = _cached_project(cache / f"cells-{args.cells}", args.cells, args.rebuild)
    exported = _cached_project(cache / f"cells-{args.export_cells}", args.export_cells,
                               args.rebuild)
    with tempfile.TemporaryDirectory() as scratch:
        small = _build(Path(scratch) / "small", SMALL_CELLS)
        records = [_measure_commits(big, small, Path(scratch), args.changes),
                   _measure_reopen(big), *_measure_exports(exported, Path(scratch))]
    for record in records:
        emit({**record, "machine": machine})
    return 0


# -- building ----------------------------------------------------------------------------
def _cached_project(folder: Path, cells: int, rebuild: bool) -> Path:
    if rebuild and folder.exists():
        shutil.rmtree(folder)
    if not (folder / "alma.sqlite").is_file():
        started = time.perf_counter()
        _build(folder, cells)
        print(f"built {folder} ({cells} cells) in {time.perf_counter() - started:.1f} s",
              flush=True)
    return folder


def _build(folder: Path, cells: int) -> Path:
    """Write a project of ``cells`` predicted cells with executemany, in one transaction."""
    from napari_alma.store.project import Project, utc_now

    rng = np.random.default_rng(0)
    side = int(np.sqrt(cells) * 60)
    with Project(folder) as project:
        slide_id = project.register_slide("/bench/smear.tif", f"fp-{cells}", (side, side),
                                          mpp=0.25)
        positions = rng.uniform(0, side - 1, size=(cells, 2))
        probabilities = rng.dirichlet(np.ones(len(CLASSES)), size=cells).round(5)
        best = probabilities.argmax(axis=1)
        now = utc_now()
        with project.transaction() as db:
            db.executemany("INSERT INTO cells VALUES (?, ?, ?, ?, 'model', ?)",
                           ((slide_id, i + 1, float(r), float(c), now)
                            for i, (r, c) in enumerate(positions)))
            db.executemany(
                "INSERT INTO predictions (slide_id, cell_id, model_version, class, confidence,"
                " probabilities, created_at) VALUES (?, ?, 'bench-1', ?, ?, ?, ?)",
                ((slide_id, i + 1, CLASSES[b], float(p[b]), json.dumps(dict(zip(CLASSES,
                  p.tolist()))), now) for i, (p, b) in enumerate(zip(probabilities, best))))
            labelled = rng.choice(cells, size=int(cells * LABELLED_FRACTION), replace=False)
            db.executemany(
                "INSERT INTO events (slide_id, cell_id, reader, time, action, old_class,"
                " new_class, model_version) VALUES (?, ?, 'bench', ?, 'label', NULL, ?,"
                " 'bench-1')",
                ((slide_id, int(i) + 1, now, CLASSES[(best[i] + 1) % len(CLASSES)])
                 for i in labelled))
            db.execute("UPDATE slides SET primary_reader='bench' WHERE slide_id=?",
                       (slide_id,))
    return folder


# -- measuring ---------------------------------------------------------------------------
def _label_rate(folder: Path, changes: int) -> float:
    from napari_alma.store.project import Project

    with Project(folder) as project:
        slide_id = project.slides()["slide_id"].iloc[0]
        cells = np.random.default_rng(1).integers(1, SMALL_CELLS, size=changes)
        started = time.perf_counter()
        for number, cell_id in enumerate(cells):
            project.label_cells(slide_id, [int(cell_id)], CLASSES[number % len(CLASSES)],
                                reader="bench")
        return changes / (time.perf_counter() - started)


def _bare_sqlite_rate(folder: Path, changes: int) -> float:
    """Commit one small insert per transaction with the store's settings: the disk floor."""
    connection = sqlite3.connect(folder / "bare.sqlite", isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("CREATE TABLE log (id INTEGER PRIMARY KEY, value TEXT)")
    started = time.perf_counter()
    for number in range(changes):
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("INSERT INTO log (value) VALUES (?)", (str(number),))
        connection.execute("COMMIT")
    elapsed = time.perf_counter() - started
    connection.close()
    return changes / elapsed


def _measure_commits(big: Path, small: Path, scratch: Path, changes: int) -> dict:
    big_rate = _label_rate(big, changes)
    small_rate = _label_rate(small, changes)
    bare_rate = _bare_sqlite_rate(scratch, changes)
    return {"case": "commit", "changes": changes, "cells": _cell_count(big),
            "changes_per_s": round(big_rate, 1),
            "baseline_small_project_changes_per_s": round(small_rate, 1),
            "baseline_bare_sqlite_commits_per_s": round(bare_rate, 1),
            "ratio_to_small_project": round(big_rate / small_rate, 3),
            "ratio_to_bare_sqlite": round(big_rate / bare_rate, 3)}


def _cell_count(folder: Path) -> int:
    connection = sqlite3.connect(folder / "alma.sqlite")
    try:
        return connection.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
    finally:
        connection.close()


def _first_release_cell_table(project, slide_id: str) -> pd.DataFrame:
    """Build the cell table the first release's way: all predictions into pandas."""
    from napari_alma.store.labels import derive_cell_table

    slide = project.slide(slide_id)
    cells = pd.read_sql_query("SELECT * FROM cells WHERE slide_id=? ORDER BY cell_id",
                              project._connection, params=(slide_id,))
    predictions = pd.read_sql_query(
        "SELECT * FROM predictions WHERE slide_id=? ORDER BY created_at", project._connection,
        params=(slide_id,))
    return derive_cell_table(cells, predictions, project.events(slide_id),
                             slide["primary_reader"], slide["mpp"])


def _measure_reopen(big: Path) -> dict:
    from napari_alma.store.project import Project

    started = time.perf_counter()
    project = Project(big)
    reopen_s = time.perf_counter() - started
    slide_id = project.slides()["slide_id"].iloc[0]
    started = time.perf_counter()
    table = project.cell_table(slide_id)
    table_s = time.perf_counter() - started
    started = time.perf_counter()
    baseline = _first_release_cell_table(project, slide_id)
    baseline_s = time.perf_counter() - started
    project.close()
    same = table.drop(columns="deleted").equals(baseline.drop(columns="deleted"))
    return {"case": "reopen", "cells": len(table), "reopen_s": round(reopen_s, 3),
            "first_cell_table_s": round(table_s, 2),
            "baseline_first_release_cell_table_s": round(baseline_s, 2),
            "ratio_to_baseline": round(table_s / baseline_s, 3), "same_table": bool(same)}


def _measure_exports(folder: Path, scratch: Path) -> list[dict]:
    from napari_alma.store.exports import export_project
    from napari_alma.store.project import Project

    records = []
    with Project(folder) as project:
        slide_id = project.slides()["slide_id"].iloc[0]
        started = time.perf_counter()
        project.cell_table(slide_id)
        read_s = time.perf_counter() - started
        for file_format in ("geojson", "coco", "csv", "parquet", "differential"):
            started = time.perf_counter()
            summary = export_project(project, file_format, scratch / file_format)
            elapsed = time.perf_counter() - started
            size = sum(Path(path).stat().st_size for path in summary["files"])
            records.append({"case": "export", "format": file_format,
                            "cells": _cell_count(folder), "export_s": round(elapsed, 2),
                            "baseline_cell_table_s": round(read_s, 2),
                            "ratio_to_cell_table": round(elapsed / read_s, 2),
                            "bytes": size})
    return records
