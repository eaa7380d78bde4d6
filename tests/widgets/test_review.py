"""The review session and dock on a real BCCD field: buttons, keys and napari's own tools."""

import numpy as np
import pytest
from qtpy.QtCore import Qt

from napari_alma.widgets import points_style

READER = "tester"  # the reader the review fixture opens the slide with

pytestmark = pytest.mark.gui


def canvas(session):
    return session.viewer.window._qt_viewer.canvas.native


def press(qtbot, session, key, modifier=Qt.KeyboardModifier.NoModifier):
    qtbot.keyClick(canvas(session), key, modifier)


def first_ids(session, n=3):
    return [int(c) for c in session.cells_layer.features["cell_id"][:n]]


def layer_rows(session, cell_ids):
    ids = session.cells_layer.features["cell_id"].to_numpy(int)
    return [int(np.flatnonzero(ids == c)[0]) for c in cell_ids]


def assert_shown_as(session, cell_ids, code):
    rows = layer_rows(session, cell_ids)
    layer = session.cells_layer
    expected = np.asarray(session.scheme[code].rgba)
    for row in rows:
        assert layer.features["class"][row] == code
        assert bool(layer.features["reviewed"][row])
        np.testing.assert_allclose(layer.border_color[row], expected)
        assert layer.face_color[row][3] == 0, "the cell itself must stay unpainted"
        assert layer.border_width[row] == pytest.approx(points_style.REVIEWED_BORDER_WIDTH)


def assert_label_events(session, cell_ids, code):
    events = session.project.events(session.slide_id)
    labels = events[(events["action"] == "label") & events["cell_id"].isin(cell_ids)]
    assert sorted(labels["cell_id"]) == sorted(cell_ids)
    assert set(labels["new_class"]) == {code}
    assert set(labels["reader"]) == {READER}
    assert labels["time"].str.len().min() > 0
    table = session.project.cell_table(session.slide_id).set_index("cell_id")
    assert set(table.loc[cell_ids, "class"]) == {code}


def test_layer_matches_store(review):
    layer = review.cells_layer
    table = review.project.cell_table(review.slide_id)
    assert layer.name == "cells"
    assert len(layer.data) == len(table) > 0
    np.testing.assert_allclose(layer.data, table[["row", "col"]].to_numpy())
    np.testing.assert_allclose(layer.scale, review.image_layer.scale[-2:])
    assert not layer.features["reviewed"].any()


def test_class_button_labels_selection(review, qtbot):
    ids = first_ids(review)
    review.select_ids(ids)
    dock = review.docks["review"]
    qtbot.mouseClick(dock.class_buttons["BLA"].native, Qt.MouseButton.LeftButton)
    assert_label_events(review, ids, "BLA")
    assert_shown_as(review, ids, "BLA")


def test_class_key_with_image_layer_active(review, qtbot):
    ids = first_ids(review)
    review.select_ids(ids)
    review.viewer.layers.selection.active = review.image_layer
    # C is napari's auto-contrast key on image layers; the review binding must win.
    press(qtbot, review, Qt.Key.Key_C)
    assert_label_events(review, ids, "MAC")
    assert_shown_as(review, ids, "MAC")


def test_class_key_with_cells_layer_active(review, qtbot):
    ids = first_ids(review, 4)[1:]
    review.select_ids(ids)
    review.viewer.layers.selection.active = review.cells_layer
    mode_before = review.cells_layer.mode
    # S is napari's select-mode key on Points layers; here it means NGS.
    press(qtbot, review, Qt.Key.Key_S)
    assert_label_events(review, ids, "NGS")
    assert_shown_as(review, ids, "NGS")
    assert review.cells_layer.mode == mode_before


def test_key_without_selection_stores_nothing(review, qtbot):
    review.cells_layer.selected_data = set()
    press(qtbot, review, Qt.Key.Key_B)
    assert review.project.events(review.slide_id).empty


def test_add_cell_at_cursor_key(review, qtbot):
    before = len(review.cells_layer.data)
    world = np.asarray(review.image_layer.scale[-2:]) * (100.0, 200.0)
    review.viewer.cursor.position = tuple(world)
    press(qtbot, review, Qt.Key.Key_N, Qt.KeyboardModifier.ShiftModifier)
    table = review.project.cell_table(review.slide_id)
    added = table[table["source"] == "added"]
    assert len(added) == 1
    assert added["row"].iloc[0] == pytest.approx(100.0)
    assert added["col"].iloc[0] == pytest.approx(200.0)
    assert len(review.cells_layer.data) == before + 1
    assert review.selected_ids() == [int(added["cell_id"].iloc[0])]
    events = review.project.events(review.slide_id)
    assert list(events["action"]) == ["add"]
    assert events["reader"].iloc[0] == READER


def test_add_outside_image_is_rejected(review):
    count_before = len(review.project.cell_table(review.slide_id))
    with pytest.raises(ValueError, match="outside"):
        review.add_cell_at((-500.0, -500.0))
    assert len(review.project.cell_table(review.slide_id)) == count_before


def test_delete_button(review, qtbot):
    ids = first_ids(review, 2)
    review.select_ids(ids)
    before = len(review.cells_layer.data)
    qtbot.mouseClick(review.docks["review"].delete_button.native, Qt.MouseButton.LeftButton)
    remaining = review.project.cell_table(review.slide_id)["cell_id"]
    assert not set(ids) & set(remaining)
    assert len(review.cells_layer.data) == before - 2
    assert not set(ids) & set(review.cells_layer.features["cell_id"])


def test_napari_delete_key_reaches_store(review, qtbot):
    ids = first_ids(review, 2)
    review.viewer.layers.selection.active = review.cells_layer
    review.select_ids(ids)
    press(qtbot, review, Qt.Key.Key_Delete)
    events = review.project.events(review.slide_id)
    deletions = events[events["action"] == "delete"]
    assert sorted(deletions["cell_id"]) == sorted(ids)
    assert set(deletions["reader"]) == {READER}
    table = review.project.cell_table(review.slide_id)
    assert len(review.cells_layer.data) == len(table)
    assert not set(ids) & set(review.cells_layer.features["cell_id"])


def test_napari_add_mode_reaches_store(review):
    before = len(review.project.cell_table(review.slide_id))
    review.cells_layer.add([50.0, 60.0])
    table = review.project.cell_table(review.slide_id)
    assert len(table) == before + 1
    new_cell = table.iloc[-1]
    assert new_cell["source"] == "added"
    assert new_cell["class"] == review.add_class
    assert review.cells_layer.features["cell_id"].iloc[-1] == new_cell["cell_id"]


def test_moving_a_point_is_undone(review):
    layer = review.cells_layer
    stored = layer.data.copy()
    layer._move({0}, stored[0] + 20.0)
    np.testing.assert_allclose(layer.data, stored)


def test_mark_reviewed_key(review, qtbot):
    ids = first_ids(review, 2)
    review.select_ids(ids)
    press(qtbot, review, Qt.Key.Key_Return)
    events = review.project.events(review.slide_id)
    assert sorted(events[events["action"] == "review"]["cell_id"]) == sorted(ids)
    features = review.cells_layer.features.set_index("cell_id")
    assert features.loc[ids, "reviewed"].all()
    predicted = features.loc[ids, "predicted_class"]
    assert list(features.loc[ids, "class"]) == list(predicted)


def test_reader_field_sets_reader(review):
    review.docks["review"].reader.value = "second reader"
    review.select_ids(first_ids(review, 1))
    review.apply_class("LYT")
    assert review.project.events(review.slide_id)["reader"].iloc[-1] == "second reader"


def test_count_dock_matches_project(review, qtbot):
    review.select_ids(first_ids(review, 3))
    review.apply_class("BLA")
    dock = review.docks["count"]
    expected = review.project.count(review.slide_id, target=500)
    assert dock.differential.to_dict() == expected.to_dict()
    rows = {row[0]: row for row in dock.table.data.to_list()}
    assert str(rows["blast"][1]) == str(expected.counts["BLA"]) == "3"
    low, high = expected.percent_ci95["BLA"]
    assert rows["blast"][2] == f"{expected.percent['BLA']:.1f} ({low:.1f}-{high:.1f})"
    assert str(expected.total_counted) in dock.summary.value
    dock.target.value = 300
    assert dock.differential.target == 300
    assert "300" in dock.summary.value
