"""Every acknowledged change survives a writer killed with SIGKILL at a random moment.

A forked child makes changes through :class:`Project` (labels, additions, deletions,
restorations and imports of a small GeoJSON file) and writes each change's tag to a pipe
only after the call returned, the moment a window would show it as done. The parent
kills the child after a random delay, reopens the project and checks that every
acknowledged change is stored whole, that no change is stored in part, and that the
database passes SQLite's integrity check. Forking after the imports makes a round cost
milliseconds instead of a Python start.
"""

import json
import os
import random
import signal
import sqlite3
import time

import numpy as np
import pytest

from napari_alma.store.imports import import_annotations
from napari_alma.store.project import Project

pytestmark = pytest.mark.skipif(
    not hasattr(os, "fork"), reason="the writer is a forked child; this platform has no fork"
)

ROUNDS = 200
CELLS = 40
LABEL_BATCH = 3
IMPORT_BATCH = 5
IMPORT_SIDE = 1000
MAX_KILL_DELAY_S = 0.06
# Every tenth round only imports, the slowest change, with a longer delay so that some
# imports finish and others are killed midway.
IMPORT_ROUND_EVERY = 10
MAX_IMPORT_KILL_DELAY_S = 0.3
CODES = ["BLA", "LYT", "EBO", "NGS", "PLM"]
# The action each kind of change stores, and how many events it makes.
EXPECTED_EVENTS = {"label": ("label", LABEL_BATCH), "add": ("add", 1),
                   "delete": ("delete", 1), "restore": ("restore", 1),
                   "import": ("add", IMPORT_BATCH)}


def _import(project, slide_id, rng, tag, folder) -> dict:
    """Import a GeoJSON file of a few points; on a slide without a pixel size all are new."""
    points = [[rng.uniform(0, IMPORT_SIDE - 1), rng.uniform(0, IMPORT_SIDE - 1)]
              for _ in range(IMPORT_BATCH)]
    features = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": point},
                 "properties": {"classification": {"name": "LYT"}}} for point in points]
    path = folder / f"{tag}.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    import_annotations(project, slide_id, path, reader=tag)
    return {"tag": tag, "kind": "import", "points": points}


def _imports_only(seed: int) -> bool:
    return seed % IMPORT_ROUND_EVERY == 0


def _change(project, slides, rng, tag, kind) -> dict:
    """Make one change of ``kind`` as reader ``tag``; return what was acknowledged."""
    slide_id = slides["main"]
    if kind == "import":
        return _import(project, slides["import"], rng, tag, project.folder)
    if kind == "add":
        row, col = rng.uniform(0, 99), rng.uniform(0, 199)
        code = rng.choice(CODES)
        cell_id = project.add_cell(slide_id, row, col, code, reader=tag)
        return {"tag": tag, "kind": kind, "cells": [cell_id], "class": code,
                "row": row, "col": col}
    if kind == "label":
        cells = rng.sample(range(1, CELLS + 1), LABEL_BATCH)
        code = rng.choice(CODES)
        project.label_cells(slide_id, cells, code, reader=tag)
        return {"tag": tag, "kind": kind, "cells": cells, "class": code}
    cells = [rng.randint(1, CELLS)]
    getattr(project, f"{kind}_cells")(slide_id, cells, reader=tag)
    return {"tag": tag, "kind": kind, "cells": cells}


def _run_writer(folder, slides, pipe_fd, seed) -> None:
    """Change the project until killed; never returns into the test runner."""
    status = 1
    try:
        rng = random.Random(seed)
        acknowledged = os.fdopen(pipe_fd, "w", buffering=1)
        with Project(folder) as project:
            acknowledged.write("ready\n")
            for number in range(10**6):
                kind = "import" if _imports_only(seed) else rng.choice(list(EXPECTED_EVENTS))
                change = _change(project, slides, rng, f"w{seed}-{number}-{kind}", kind)
                acknowledged.write(json.dumps(change) + "\n")
        status = 0
    finally:
        os._exit(status)


def _kill_writer_at_random(folder, slides, seed, delay) -> list[dict]:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _run_writer(folder, slides, write_fd, seed)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        # Time the kill from the first change, so a slow start under load does not
        # swallow the delay.
        ready = pipe.readline()
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        lines = pipe.read().split("\n")
    assert ready == "ready\n"
    # The last line may be cut short by the kill: only complete lines were acknowledged.
    return [json.loads(line) for line in lines[:-1]]


def _check_store(folder, acknowledged: list[dict]) -> None:
    # Reopening through Project runs SQLite's recovery of the write-ahead log.
    Project(folder).close()
    connection = sqlite3.connect(folder / "alma.sqlite")
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
        cells = {(slide_id, cell_id): [row, col] for slide_id, cell_id, row, col
                 in connection.execute("SELECT slide_id, cell_id, row, col FROM cells")}
        events = connection.execute(
            "SELECT event_id, reader, action, slide_id, cell_id, new_class FROM events"
            " ORDER BY rowid").fetchall()
    finally:
        connection.close()

    event_ids = [event[0] for event in events]
    assert event_ids == sorted(set(event_ids))
    by_reader: dict[str, list[tuple]] = {}
    for _, reader, action, slide_id, cell_id, new_class in events:
        by_reader.setdefault(reader, []).append((action, (slide_id, cell_id), new_class))
    for reader, stored in by_reader.items():
        action, count = EXPECTED_EVENTS[reader.rsplit("-", 1)[1]]
        assert {event[0] for event in stored} == {action}, f"change {reader} mixes actions"
        assert len(stored) == count, f"change {reader} is stored in part"

    for change in acknowledged:
        stored = by_reader.get(change["tag"])
        assert stored is not None, f"acknowledged change {change} was lost"
        if change["kind"] == "import":
            positions = sorted(cells[key] for _, key, _ in stored)
            assert positions == sorted([y - 0.5, x - 0.5] for x, y in change["points"])
            continue
        assert sorted(key[1] for _, key, _ in stored) == sorted(change["cells"])
        if "class" in change:
            assert {new_class for _, _, new_class in stored} == {change["class"]}
        if change["kind"] == "add":
            assert cells[stored[0][1]] == [change["row"], change["col"]]


def test_sigkill_loses_no_acknowledged_change(tmp_path):
    folder = tmp_path / "project"
    with Project(folder) as project:
        slide_id = project.register_slide("/data/smear.tif", "fp-kill", (100, 200), mpp=0.5)
        slides = {"main": slide_id, "import": project.register_slide(
            "/data/other.tif", "fp-import", (IMPORT_SIDE, IMPORT_SIDE))}
        positions = np.column_stack([np.linspace(1, 98, CELLS), np.linspace(1, 198, CELLS)])
        probabilities = np.tile([0.6, 0.3, 0.1], (CELLS, 1))
        project.add_predictions(slide_id, positions, probabilities, ["NGS", "LYT", "EBO"],
                                "m1", radius=1.0)

    rng = random.Random(20261204)
    acknowledged: list[dict] = []
    for seed in range(ROUNDS):
        delay = rng.uniform(0, MAX_IMPORT_KILL_DELAY_S if _imports_only(seed)
                            else MAX_KILL_DELAY_S)
        acknowledged += _kill_writer_at_random(folder, slides, seed, delay)
        _check_store(folder, acknowledged)

    # The kills must have landed between changes, or the test proved nothing.
    assert len(acknowledged) > ROUNDS / 2
    assert {change["kind"] for change in acknowledged} == set(EXPECTED_EVENTS)
