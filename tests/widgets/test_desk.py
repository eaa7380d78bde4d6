"""Undo/redo, the review queue and sign-off in napari, driven by keys and dock buttons."""

import numpy as np
import pytest
from qtpy.QtCore import Qt

from napari_alma.store import signoff
from napari_alma.widgets import desk, relabel

READER = "tester"  # the reader the review fixture opens the slide with
CTRL = Qt.KeyboardModifier.ControlModifier
CTRL_SHIFT = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier

pytestmark = pytest.mark.gui


def canvas(session):
    return session.viewer.window._qt_viewer.canvas.native


def press(qtbot, session, key, modifier=Qt.KeyboardModifier.NoModifier):
    qtbot.keyClick(canvas(session), key, modifier)


def click(qtbot, button):
    qtbot.mouseClick(button.native, Qt.MouseButton.LeftButton)


def ids_of(session, n):
    return [int(c) for c in session.cells_layer.features["cell_id"][:n]]


def stored_classes(session):
    table = session.project.cell_table(session.slide_id, reader=READER)
    return dict(zip(table["cell_id"], table["class"]))


def shown_classes(session):
    features = session.cells_layer.features
    shown = np.where(features["reviewed"], features["class"], "")
    return dict(zip(features["cell_id"], shown))


@pytest.fixture
def errors(monkeypatch):
    shown = []
    monkeypatch.setattr("napari.utils.notifications.show_error", shown.append)
    return shown


# -- reclassify by key, whatever has focus ---------------------------------------------------
@pytest.mark.parametrize("active", ["image", "cells"])
def test_class_key_per_active_layer(review, qtbot, active):
    ids = ids_of(review, 2)
    review.select_ids(ids)
    layer = review.image_layer if active == "image" else review.cells_layer
    review.viewer.layers.selection.active = layer
    press(qtbot, review, Qt.Key.Key_L)
    assert {stored_classes(review)[c] for c in ids} == {"LYT"}
    assert {shown_classes(review)[c] for c in ids} == {"LYT"}


def test_class_key_with_dock_focused(review, qtbot):
    ids = ids_of(review, 1)
    review.select_ids(ids)
    button = review.docks["queue"].next_button.native
    button.setFocus()
    qtbot.keyClick(button, Qt.Key.Key_B)
    assert stored_classes(review)[ids[0]] == "BLA"
    assert shown_classes(review)[ids[0]] == "BLA"


def markers_of(session):
    visual = session.viewer.window._qt_viewer.canvas.layer_to_visual[session.cells_layer]
    return visual


def test_patched_markers_match_full_rebuild(review):
    ids = ids_of(review, 3)
    review.select_ids(ids[1:2])
    review.apply_class("EOS")
    visual = markers_of(review)
    patched = visual.node.points_markers._data.copy()
    visual._on_data_change()
    rebuilt = visual.node.points_markers._data
    np.testing.assert_allclose(patched["a_fg_color"], rebuilt["a_fg_color"])
    np.testing.assert_allclose(patched["a_edgewidth"], rebuilt["a_edgewidth"], rtol=1e-6)
    row = relabel.layer_rows(review.cells_layer, ids[1:2])[0]
    np.testing.assert_allclose(patched["a_fg_color"][row], review.scheme["EOS"].rgba)


def test_undone_label_patched_as_unreviewed(review, qtbot):
    cell = ids_of(review, 1)[0]
    review.select_ids([cell])
    review.apply_class("EOS")
    press(qtbot, review, Qt.Key.Key_Z, CTRL)
    visual = markers_of(review)
    patched = visual.node.points_markers._data.copy()
    visual._on_data_change()
    rebuilt = visual.node.points_markers._data
    np.testing.assert_allclose(patched["a_fg_color"], rebuilt["a_fg_color"])
    np.testing.assert_allclose(patched["a_edgewidth"], rebuilt["a_edgewidth"], rtol=1e-6)
    row = relabel.layer_rows(review.cells_layer, [cell])[0]
    assert not review.cells_layer.features["reviewed"][row]


# -- undo and redo ------------------------------------------------------------------------------
def test_undo_redo_chain_by_keys(review, qtbot):
    first, second, third = ids_of(review, 3)
    review.viewer.layers.selection.active = review.cells_layer
    snapshots = [stored_classes(review)]
    review.select_ids([first, second])
    press(qtbot, review, Qt.Key.Key_B)                      # label two cells: one step
    snapshots.append(stored_classes(review))
    review.select_ids([first])
    press(qtbot, review, Qt.Key.Key_L)                      # relabel one
    snapshots.append(stored_classes(review))
    review.viewer.cursor.position = tuple(np.asarray(review.image_layer.scale[-2:]) * 50.0)
    press(qtbot, review, Qt.Key.Key_N, Qt.KeyboardModifier.ShiftModifier)   # add
    added = review.selected_ids()[0]
    snapshots.append(stored_classes(review))
    review.select_ids([third])
    press(qtbot, review, Qt.Key.Key_Delete)                 # delete
    assert third not in stored_classes(review)

    for expected in reversed(snapshots):
        press(qtbot, review, Qt.Key.Key_Z, CTRL)
        assert stored_classes(review) == expected
        assert shown_classes(review) == expected
    assert added not in stored_classes(review)

    press(qtbot, review, Qt.Key.Key_Z, CTRL_SHIFT)
    assert stored_classes(review) == snapshots[1]
    press(qtbot, review, Qt.Key.Key_Z, CTRL_SHIFT)
    assert stored_classes(review) == snapshots[2]
    assert shown_classes(review) == snapshots[2]

    review.select_ids([third])
    press(qtbot, review, Qt.Key.Key_E)                      # a new action clears redo
    press(qtbot, review, Qt.Key.Key_Z, CTRL_SHIFT)
    assert stored_classes(review)[third] == "EOS"
    assert added not in stored_classes(review)
    undo_events = review.project.events(review.slide_id)["undoes"].dropna()
    assert len(undo_events) == 1 + 2 + 1 + 1 + 1 + 2     # reverts of every event undone/redone


def test_undo_buttons(review, qtbot):
    cell = ids_of(review, 1)[0]
    review.select_ids([cell])
    review.apply_class("MON")
    dock = review.docks["queue"]
    click(qtbot, dock.undo_button)
    assert stored_classes(review)[cell] == ""
    click(qtbot, dock.redo_button)
    assert stored_classes(review)[cell] == "MON"
    assert review.selected_ids() == [cell]


# -- review queue ------------------------------------------------------------------------------
def test_next_key_visits_least_confident_first(review, qtbot):
    dock = review.docks["queue"]
    dock.order.value = "least_confidence"
    table = review.project.cell_table(review.slide_id).sort_values(["confidence", "cell_id"])
    expected = [int(c) for c in table["cell_id"][:2]]
    press(qtbot, review, Qt.Key.Key_Period)
    assert review.selected_ids() == [expected[0]]
    row = relabel.layer_rows(review.cells_layer, expected[:1])[0]
    centre = review.cells_layer.data_to_world(review.cells_layer.data[row])
    np.testing.assert_allclose(desk.camera_of(review.viewer).center[-2:], centre, atol=1e-6)
    press(qtbot, review, Qt.Key.Key_S)                      # labelled: leaves the queue
    press(qtbot, review, Qt.Key.Key_Period)
    assert review.selected_ids() == [expected[1]]
    press(qtbot, review, Qt.Key.Key_Comma)
    assert review.selected_ids() == [expected[0]]


def test_progress_label(review):
    dock = review.docks["queue"]
    dock.threshold.value = 1.0
    total = len(review.cells_layer.data)
    assert f"0 / {total}" in dock.progress.value
    review.select_ids(ids_of(review, 2))
    review.apply_class("LYT")
    assert f"2 / {total}" in dock.progress.value
    assert f"{total - 2} unreviewed" in dock.progress.value


# -- sign-off ------------------------------------------------------------------------------------
def test_finalise_refused_with_reasons(review, qtbot, errors):
    dock = review.docks["queue"]
    dock.threshold.value = 1.0
    click(qtbot, dock.finalise_button)
    assert review.project.slide_events(review.slide_id).empty
    assert len(errors) == 1
    assert "unreviewed cells have a model confidence under 1.00" in errors[0]
    assert "fewer than the target of 500" in errors[0]


def test_finalised_slide_rejects_keys(review, qtbot, errors):
    total = len(review.cells_layer.data)
    review.select_ids(ids_of(review, total))
    review.apply_class("NGS")
    desk.finalise_slide(review, target=total, threshold=0.8)
    assert "Finalised by tester" in review.docks["queue"].signoff_state.value
    events_before = len(review.project.events(review.slide_id))
    review.select_ids(ids_of(review, 1))
    press(qtbot, review, Qt.Key.Key_B)
    press(qtbot, review, Qt.Key.Key_Z, CTRL)
    assert len(review.project.events(review.slide_id)) == events_before
    assert len(errors) == 2
    assert "read-only" in errors[0]
    assert shown_classes(review)[ids_of(review, 1)[0]] == "NGS"


def test_reopen_from_dock_is_logged(review, qtbot):
    total = len(review.cells_layer.data)
    review.select_ids(ids_of(review, total))
    review.apply_class("NGS")
    desk.finalise_slide(review, target=total, threshold=0.8)
    dock = review.docks["queue"]
    dock.reason.value = "second opinion on blasts"
    click(qtbot, dock.reopen_button)
    reopened = review.project.slide_events(review.slide_id, "reopen")
    assert list(reopened["reader"]) == [READER]
    assert reopened["detail"].iloc[0] == {"reason": "second opinion on blasts"}
    assert not signoff.is_finalised(review.project, review.slide_id)
    assert dock.signoff_state.value == "Open for review."


def test_count_dock_follows_every_change(review, qtbot):
    review.viewer.layers.selection.active = review.cells_layer
    first, second, third = ids_of(review, 3)
    review.select_ids([first, second])
    press(qtbot, review, Qt.Key.Key_B)
    review.select_ids([first])
    press(qtbot, review, Qt.Key.Key_L)
    review.viewer.cursor.position = tuple(np.asarray(review.image_layer.scale[-2:]) * 60.0)
    press(qtbot, review, Qt.Key.Key_N, Qt.KeyboardModifier.ShiftModifier)
    review.select_ids([third])
    press(qtbot, review, Qt.Key.Key_Delete)
    press(qtbot, review, Qt.Key.Key_Z, CTRL)
    review.select_ids([second])
    press(qtbot, review, Qt.Key.Key_E)
    dock = review.docks["count"]
    expected = review.project.count(review.slide_id, reader=READER, target=500)
    assert dock.differential.to_dict() == expected.to_dict()
