"""Two readers, two windows, or a window and the command line on one project at once."""

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from napari_alma.store.project import DATABASE_NAME, Project, StoreError

REPO_ROOT = Path(__file__).resolve().parents[2]
CELLS = 20
CHANGES_PER_WRITER = 40

needs_fork = pytest.mark.skipif(
    not hasattr(os, "fork"), reason="the second writer is a forked child; no fork here"
)


@pytest.fixture
def shared(tmp_path):
    """A project folder with one predicted slide; returns (folder, slide_id)."""
    folder = tmp_path / "shared project"
    with Project(folder) as project:
        slide_id = project.register_slide("/data/smear.tif", "fp-shared", (100, 200), mpp=0.5)
        positions = np.column_stack([np.linspace(1, 98, CELLS), np.linspace(1, 198, CELLS)])
        project.add_predictions(slide_id, positions, np.tile([0.6, 0.3, 0.1], (CELLS, 1)),
                                ["NGS", "LYT", "EBO"], "m1", radius=1.0)
    return folder, slide_id


def _write_many(folder, slide_id, codes, reader) -> None:
    with Project(folder, timeout=20) as project:
        for number in range(CHANGES_PER_WRITER):
            project.label_cells(slide_id, [1 + number % 3], codes[number % len(codes)],
                                reader=reader)
            project.add_cell(slide_id, 50.0, float(number), codes[0], reader=reader)


def _fork_writer(folder, slide_id, codes, reader) -> int:
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            _write_many(folder, slide_id, codes, reader)
            status = 0
        finally:
            os._exit(status)
    return pid


def _label_chain_is_unbroken(events, reader) -> bool:
    """True when each label's old class is the new class of the reader's label before it."""
    for _, cell_events in events[events["reader"] == reader].groupby("cell_id"):
        labels = cell_events[cell_events["action"] == "label"]
        previous = list(labels["new_class"])[:-1]
        if list(labels["old_class"])[1:] != previous:
            return False
    return True


@needs_fork
def test_two_processes_lose_no_update(shared):
    folder, slide_id = shared
    children = [_fork_writer(folder, slide_id, ["BLA", "LYT"], "ana"),
                _fork_writer(folder, slide_id, ["PLM", "EBO"], "ana")]
    statuses = [os.waitpid(pid, 0)[1] for pid in children]

    assert statuses == [0, 0]
    with Project(folder) as project:
        events = project.events(slide_id)
        table = project.cell_table(slide_id, reader="ana")
    assert len(events) == 2 * 2 * CHANGES_PER_WRITER
    assert len(table) == CELLS + 2 * CHANGES_PER_WRITER
    assert len(set(table["cell_id"])) == len(table)
    assert _label_chain_is_unbroken(events, "ana")


def test_each_window_sees_the_other_on_refresh(shared):
    folder, slide_id = shared
    with Project(folder) as first, Project(folder) as second:
        first.cell_table(slide_id)
        second.label_cells(slide_id, [4], "BLA", reader="luis")
        added = first.add_cell(slide_id, 10.0, 10.0, "PLM", reader="ana")

        seen_by_first = first.cell_table(slide_id, reader="luis").set_index("cell_id")
        seen_by_second = second.cell_table(slide_id, reader="ana").set_index("cell_id")
    assert seen_by_first.loc[4, "class"] == "BLA"
    assert seen_by_second.loc[added, "class"] == "PLM"


def _hold_write_lock(database, seconds, started):
    connection = sqlite3.connect(database, isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    started.set()
    time.sleep(seconds)
    connection.execute("COMMIT")
    connection.close()


def _locked_for(folder, seconds):
    started = threading.Event()
    holder = threading.Thread(target=_hold_write_lock,
                              args=(folder / DATABASE_NAME, seconds, started))
    holder.start()
    started.wait()
    return holder


def test_write_waits_for_other_writer(shared):
    folder, slide_id = shared
    with Project(folder, timeout=10) as project:
        holder = _locked_for(folder, 0.5)
        project.label_cells(slide_id, [2], "BLA", reader="ana")
        holder.join()
        assert project.cell_table(slide_id).set_index("cell_id").loc[2, "class"] == "BLA"


def test_write_times_out_with_store_error(shared):
    folder, slide_id = shared
    with Project(folder, timeout=0.3) as project:
        holder = _locked_for(folder, 1.5)
        with pytest.raises(StoreError) as caught:
            project.label_cells(slide_id, [2], "BLA", reader="ana")
        holder.join()
        events = project.events(slide_id)
    message = str(caught.value)
    assert "database is locked" not in message
    assert "busy" in message
    assert str(folder) in message
    assert len(events) == 0


def test_window_and_command_line_together(shared):
    folder, slide_id = shared
    command = [sys.executable, "-m", "napari_alma.cli", "label", str(folder), "--slide",
               slide_id, "--cell", "5", "6", "--class", "BLA", "--reader", "luis"]
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    with Project(folder) as window:
        cli = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        while cli.poll() is None:
            window.label_cells(slide_id, [7], "LYT", reader="ana")
            # A reader changes a cell every few hundred ms at most. A loop with no pause
            # would starve the other writer, since SQLite's lock waits are not queued.
            time.sleep(0.02)
        _, errors = cli.communicate()
        table = window.cell_table(slide_id, reader="luis").set_index("cell_id")

    assert cli.returncode == 0, errors
    assert "locked" not in errors
    assert list(table.loc[[5, 6], "class"]) == ["BLA", "BLA"]


@needs_fork
def test_two_processes_create_one_project(tmp_path):
    folder = tmp_path / "new project"
    children = []
    for reader in ("ana", "luis"):
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                with Project(folder, timeout=20) as project:
                    slide_id = project.register_slide("/data/a.tif", "fp-new", (50, 50))
                    project.add_cell(slide_id, 5.0, 5.0, "BLA", reader=reader)
                status = 0
            finally:
                os._exit(status)
        children.append(pid)
    statuses = [os.waitpid(pid, 0)[1] for pid in children]

    assert statuses == [0, 0]
    with Project(folder) as project:
        events = project.events(project.slides()["slide_id"].iloc[0])
    assert sorted(events["reader"]) == ["ana", "luis"]
