import sqlite3

import numpy as np
import pytest

from napari_alma.store.project import Project, StoreError

CLASSES = ["NGS", "LYT", "EBO"]


@pytest.fixture
def project(tmp_path):
    with Project(tmp_path / "project") as project:
        yield project


def _predict(project, slide_id, positions, version="m1"):
    probabilities = np.tile([0.7, 0.2, 0.1], (len(positions), 1))
    return project.add_predictions(slide_id, np.array(positions), probabilities, CLASSES,
                                   version, radius=5.0)


def _slide(project):
    return project.register_slide("/data/field 1 ñ.jpg", "fp-1", (100, 200), mpp=0.5)


def test_register_slide_is_pseudonymous_and_idempotent(project):
    slide_id = _slide(project)
    assert slide_id.startswith("S-")
    assert "field" not in slide_id
    assert project.register_slide("/moved/field.jpg", "fp-1", (100, 200)) == slide_id
    assert project.slide(slide_id)["path"] == "/moved/field.jpg"


def test_labels_derived_from_events(project):
    slide_id = _slide(project)
    _predict(project, slide_id, [[10, 10], [50, 60], [80, 150]])
    project.label_cells(slide_id, [1], "LYT", reader="ana")
    project.review_cells(slide_id, [2], reader="ana")
    added = project.add_cell(slide_id, 20.5, 30.25, "BLA", reader="ana")
    project.delete_cells(slide_id, [3], reader="ana")

    table = project.cell_table(slide_id).set_index("cell_id")
    assert list(table.index) == [1, 2, added]
    assert table.loc[1, "class"] == "LYT"
    assert table.loc[1, "label_source"] == "corrected"
    assert table.loc[2, "class"] == "NGS"
    assert table.loc[2, "label_source"] == "model"
    assert table.loc[added, "label_source"] == "added"
    assert table.loc[added, "row_um"] == pytest.approx(10.25)
    events = project.events(slide_id)
    assert list(events["action"]) == ["label", "review", "add", "delete"]
    assert set(events["reader"]) == {"ana"}
    assert events.loc[0, "old_class"] is None
    assert events.loc[0, "new_class"] == "LYT"
    assert events.loc[0, "model_version"] == "m1"


def test_predicting_again_keeps_labels_and_adds_no_duplicates(project):
    slide_id = _slide(project)
    _predict(project, slide_id, [[10, 10], [50, 60]])
    project.label_cells(slide_id, [1], "EBO", reader="ana")
    result = _predict(project, slide_id, [[11, 12], [90, 190]], version="m2")
    assert result == {"new": [3], "matched": [1]}
    table = project.cell_table(slide_id).set_index("cell_id")
    assert len(table) == 3
    assert table.loc[1, "class"] == "EBO"
    assert table.loc[1, "model_version"] == "m2"
    assert table.loc[2, "model_version"] == "m1"


def test_count_uses_labels_then_predictions(project):
    slide_id = _slide(project)
    _predict(project, slide_id, [[10, 10], [50, 60], [80, 150]])
    project.label_cells(slide_id, [1], "EBO", reader="ana")
    differential = project.count(slide_id)
    assert differential.total_counted == 3
    assert differential.counts["NGS"] == 2
    assert differential.counts["EBO"] == 1
    assert differential.unreviewed == 2
    assert differential.me_ratio == pytest.approx(2.0)


def test_unknown_class_and_cell_rejected(project):
    slide_id = _slide(project)
    _predict(project, slide_id, [[10, 10]])
    with pytest.raises(ValueError, match="XYZ"):
        project.label_cells(slide_id, [1], "XYZ")
    with pytest.raises(StoreError, match=r"\[99\]"):
        project.label_cells(slide_id, [99], "LYT")
    assert project.events(slide_id).empty


def test_event_log_is_append_only(project):
    slide_id = _slide(project)
    _predict(project, slide_id, [[10, 10]])
    project.label_cells(slide_id, [1], "LYT", reader="ana")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        project._connection.execute("DELETE FROM events")


def test_changes_visible_to_second_connection(project):
    slide_id = _slide(project)
    _predict(project, slide_id, [[10, 10]])
    project.label_cells(slide_id, [1], "LYT", reader="ana")
    with Project(project.folder) as other:
        assert other.cell_table(slide_id).loc[0, "class"] == "LYT"


def test_model_with_foreign_class_rejected(project):
    slide_id = _slide(project)
    with pytest.raises(ValueError, match="LYA"):
        project.add_predictions(slide_id, np.zeros((1, 2)), np.ones((1, 1)), ["LYA"], "x", 5)


def test_zero_detections_store_nothing(project):
    slide_id = _slide(project)
    result = project.add_predictions(slide_id, np.empty((0, 2)), np.empty((0, 3)), CLASSES,
                                     "m1", radius=5.0)
    assert result == {"new": [], "matched": []}
    assert project.cell_table(slide_id).empty
    assert project.count(slide_id).warnings == ["no_cells"]
