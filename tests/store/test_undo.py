"""Undo and redo derived from the event log, checked against the stored cell table."""

import numpy as np
import pytest

from napari_alma.store import undo
from napari_alma.store.project import Project

CLASSES = ["NGS", "LYT", "EBO"]
READER = "ana"


@pytest.fixture
def slide(tmp_path):
    with Project(tmp_path / "project") as project:
        slide_id = project.register_slide("/data/field.jpg", "fp-1", (100, 200), mpp=0.5)
        positions = np.array([[10, 10], [50, 60], [80, 150], [30, 30]], dtype=float)
        probabilities = np.tile([0.7, 0.2, 0.1], (len(positions), 1))
        project.add_predictions(slide_id, positions, probabilities, CLASSES, "m1", radius=5.0)
        yield project, slide_id


def classes(project, slide_id, reader=READER):
    table = project.cell_table(slide_id, reader=reader)
    return dict(zip(table["cell_id"], table["class"]))


def live_ids(project, slide_id):
    return set(project.cell_table(slide_id)["cell_id"])


def test_undo_of_first_label_unlabels(slide):
    project, slide_id = slide
    project.label_cells(slide_id, [1], "LYT", READER)
    undo.undo(project, slide_id, READER)
    assert classes(project, slide_id)[1] == ""
    last = project.events(slide_id).iloc[-1]
    assert last["action"] == "unlabel"
    assert last["undoes"] == project.events(slide_id).iloc[0]["event_id"]


def test_undo_of_relabel_restores_class(slide):
    project, slide_id = slide
    project.label_cells(slide_id, [1], "LYT", READER)
    project.label_cells(slide_id, [1], "EBO", READER)
    undo.undo(project, slide_id, READER)
    assert classes(project, slide_id)[1] == "LYT"
    assert project.events(slide_id).iloc[-1]["action"] == "label"


def test_chain_against_store(slide):
    project, slide_id = slide
    project.label_cells(slide_id, [1, 2], "LYT", READER)   # one step on two cells
    project.label_cells(slide_id, [2], "EBO", READER)
    added = project.add_cell(slide_id, 40.0, 40.0, "NGS", READER)
    project.delete_cells(slide_id, [3], READER)
    states = []
    for _ in range(4):
        states.append((classes(project, slide_id), live_ids(project, slide_id)))
        assert undo.undo(project, slide_id, READER) is not None
    assert classes(project, slide_id) == {1: "", 2: "", 3: "", 4: ""}
    assert live_ids(project, slide_id) == {1, 2, 3, 4}
    assert undo.undo(project, slide_id, READER) is None

    undo.redo(project, slide_id, READER)
    assert classes(project, slide_id) == states[3][0]
    undo.redo(project, slide_id, READER)
    assert classes(project, slide_id) == states[2][0]
    assert len(undo.history(project, slide_id, READER).redo) == 2

    project.label_cells(slide_id, [4], "EBO", READER)
    after = undo.history(project, slide_id, READER)
    assert after.redo == []
    assert undo.redo(project, slide_id, READER) is None
    assert added not in live_ids(project, slide_id)


def test_undo_add_then_redo(slide):
    project, slide_id = slide
    added = project.add_cell(slide_id, 40.0, 40.0, "NGS", READER)
    undo.undo(project, slide_id, READER)
    assert added not in live_ids(project, slide_id)
    assert project.events(slide_id).iloc[-1]["action"] == "delete"
    undo.redo(project, slide_id, READER)
    assert added in live_ids(project, slide_id)
    assert classes(project, slide_id)[added] == "NGS"


def test_undo_delete_restores(slide):
    project, slide_id = slide
    project.delete_cells(slide_id, [2, 3], READER)
    step = undo.undo(project, slide_id, READER)
    assert step.cell_ids == [2, 3]
    assert live_ids(project, slide_id) == {1, 2, 3, 4}
    assert set(project.events(slide_id)["action"]) == {"delete", "restore"}


def test_multi_cell_step_is_one_undo(slide):
    project, slide_id = slide
    project.label_cells(slide_id, [1, 2, 3], "EBO", READER)
    undo.undo(project, slide_id, READER)
    assert set(classes(project, slide_id).values()) == {""}
    reverts = project.events(slide_id).iloc[3:]
    assert len(reverts) == 3
    assert reverts["time"].nunique() == 1


def test_stacks_are_per_reader(slide):
    project, slide_id = slide
    project.label_cells(slide_id, [1], "LYT", READER)
    project.label_cells(slide_id, [1], "EBO", "ben")
    undo.undo(project, slide_id, READER)
    assert classes(project, slide_id, READER)[1] == ""
    assert classes(project, slide_id, "ben")[1] == "EBO"


def test_history_survives_reopening(slide, tmp_path):
    project, slide_id = slide
    project.label_cells(slide_id, [1], "LYT", READER)
    project.label_cells(slide_id, [2], "LYT", READER)
    undo.undo(project, slide_id, READER)
    with Project(project.folder) as other_window:
        stacks = undo.history(other_window, slide_id, READER)
        assert [s.cell_ids for s in stacks.undo] == [[1]]
        assert [s.cell_ids for s in stacks.redo] == [[2]]
        undo.redo(other_window, slide_id, READER)
    assert classes(project, slide_id)[2] == "LYT"


def test_undo_of_review_unlabels(slide):
    project, slide_id = slide
    project.review_cells(slide_id, [4], READER)
    assert classes(project, slide_id)[4] == "NGS"
    undo.undo(project, slide_id, READER)
    assert classes(project, slide_id)[4] == ""
