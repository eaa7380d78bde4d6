"""Blind second read and the agreement dock on a real BCCD field under Xvfb."""

import numpy as np
import pytest
from qtpy.QtCore import Qt

from napari_alma.store.second_read import is_reading_blind
from napari_alma.widgets import points_style

pytestmark = pytest.mark.gui

PRIMARY = "tester"
SECOND = "bea"
ADJUDICATOR = "carla"


def open_as(make_napari_viewer, project, field_path, reader, blind=False):
    from napari_alma.widgets.launch import open_in_viewer

    viewer = make_napari_viewer()
    return open_in_viewer(viewer, field_path, project.folder, reader=reader, predict=False,
                          blind=blind)


def cell_ids(project, slide_id, n):
    return [int(c) for c in project.cell_table(slide_id)["cell_id"][:n]]


@pytest.fixture
def primary_read(project_with_cells):
    """The primary reader classed the first four cells BLA, BLA, LYT, LYT."""
    project, slide_id = project_with_cells
    ids = cell_ids(project, slide_id, 4)
    for cell_id, code in zip(ids, ["BLA", "BLA", "LYT", "LYT"]):
        project.label_cells(slide_id, [cell_id], code, reader=PRIMARY)
    return project, slide_id, ids


@pytest.fixture
def blind(make_napari_viewer, primary_read, field_path):
    project, slide_id, _ = primary_read
    session = open_as(make_napari_viewer, project, field_path, SECOND, blind=True)
    yield session
    session.project.close()


def test_blind_layer_hides_predictions(blind):
    features = blind.cells_layer.features
    assert blind.blind
    assert set(features["predicted_class"]) == {""}
    assert features["confidence"].isna().all()


def test_blind_layer_hides_first_reader(blind):
    features = blind.cells_layer.features
    assert set(features["class"]) == {""}
    assert not features["reviewed"].any()


def test_blind_layer_neutral_colour(blind):
    colours = blind.cells_layer.border_color
    np.testing.assert_allclose(colours, np.tile(points_style.BLIND_UNLABELLED_RGBA,
                                                (len(colours), 1)))
    scheme_colours = [tuple(c.rgba) for c in blind.scheme.classes]
    assert tuple(points_style.BLIND_UNLABELLED_RGBA) not in scheme_colours


def test_blind_label_shows_own_class_only(blind, qtbot):
    target = int(blind.cells_layer.features["cell_id"][1])
    blind.select_ids([target])
    qtbot.keyClick(blind.viewer.window._qt_viewer.canvas.native, Qt.Key.Key_E)
    features = blind.cells_layer.features.set_index("cell_id")
    assert features.loc[target, "class"] == "EOS"
    assert (features["class"] != "").sum() == 1
    row = int(np.flatnonzero(blind.cells_layer.features["cell_id"] == target)[0])
    np.testing.assert_allclose(blind.cells_layer.border_color[row], blind.scheme["EOS"].rgba)


def test_blind_count_dock_own_labels(blind):
    blind.select_ids([int(blind.cells_layer.features["cell_id"][0])])
    blind.apply_class("MON")
    differential = blind.docks["count"].differential
    assert differential.total_counted == 1
    assert differential.counts["MON"] == 1
    assert differential.unreviewed == len(blind.cells_layer.data) - 1


def test_blind_labels_stored_apart(blind, primary_read):
    _, slide_id, ids = primary_read
    blind.select_ids([ids[0]])
    blind.apply_class("LYT")
    second = blind.project.cell_table(slide_id, reader=SECOND).set_index("cell_id")
    primary = blind.project.cell_table(slide_id, reader=PRIMARY).set_index("cell_id")
    assert second.loc[ids[0], "class"] == "LYT"
    assert primary.loc[ids[0], "class"] == "BLA"


def test_blind_rejects_confirming(blind):
    blind.select_ids([int(blind.cells_layer.features["cell_id"][0])])
    with pytest.raises(ValueError, match="blind"):
        blind.mark_reviewed_selected()


def test_blind_start_logged(blind):
    events = blind.project.slide_events(blind.slide_id, action="start_second_read")
    assert list(events["reader"]) == [SECOND]


def test_agreement_dock_hidden_while_blind(blind):
    dock = blind.docks["agreement"]
    assert dock.agreement is None
    assert "blind" in dock.summary.value.lower()
    assert dock.disagreements.native.rowCount() == 0


def test_blind_toggle_ends_read(blind):
    dock = blind.docks["review"]
    assert dock.blind.value
    dock.blind.value = False
    assert not blind.blind
    assert not is_reading_blind(blind.project, blind.slide_id, SECOND)
    assert set(blind.cells_layer.features["predicted_class"]) != {""}


def test_open_blind_read_reopens_blind(make_napari_viewer, blind, field_path):
    again = open_as(make_napari_viewer, blind.project, field_path, SECOND)
    assert again.blind
    assert set(again.cells_layer.features["predicted_class"]) == {""}


def test_toggle_starts_blind_read(make_napari_viewer, primary_read, field_path):
    project, slide_id, _ = primary_read
    session = open_as(make_napari_viewer, project, field_path, SECOND)
    assert not session.blind
    session.docks["review"].blind.value = True
    assert session.blind
    assert is_reading_blind(project, slide_id, SECOND)
    assert set(session.cells_layer.features["predicted_class"]) == {""}


def test_primary_reader_toggle_rejected(make_napari_viewer, primary_read, field_path):
    project, slide_id, _ = primary_read
    session = open_as(make_napari_viewer, project, field_path, PRIMARY)
    session.docks["review"].blind.value = True
    assert not session.blind
    assert not session.docks["review"].blind.value
    assert project.slide_events(slide_id).empty


# -- the agreement dock ---------------------------------------------------------------------
@pytest.fixture
def two_reads(make_napari_viewer, primary_read, field_path):
    """The second reader classed the same four cells BLA, LYT, LYT, EBO (two disagreements);
    the adjudicator opens the slide.
    """
    project, slide_id, ids = primary_read
    for cell_id, code in zip(ids, ["BLA", "LYT", "LYT", "EBO"]):
        project.label_cells(slide_id, [cell_id], code, reader=SECOND)
    session = open_as(make_napari_viewer, project, field_path, PRIMARY)
    dock = session.docks["agreement"]
    dock.adjudicator.value = ADJUDICATOR
    yield session, dock, ids
    session.project.close()


def click_row(qtbot, table, row):
    rect = table.visualItemRect(table.item(row, 0))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_dock_kappa_matches_hand_value(two_reads):
    _, dock, _ = two_reads
    # Four cells: p_o = 2/4; A: BLA 2, LYT 2; B: BLA 1, LYT 2, EBO 1.
    p_o, p_e = 2 / 4, (2 * 1 + 2 * 2) / 16
    assert dock.agreement.kappa == pytest.approx((p_o - p_e) / (1 - p_e))
    assert f"{dock.agreement.kappa:.2f}" in dock.summary.value


def test_dock_lists_disagreements(two_reads):
    _, dock, ids = two_reads
    table = dock.disagreements.native
    assert table.rowCount() == 2
    assert [int(table.item(row, 0).text()) for row in range(2)] == [ids[1], ids[3]]


def test_dock_confusion_table(two_reads):
    _, dock, _ = two_reads
    table = dock.confusion.native
    assert table.rowCount() == 3  # BLA, LYT, EBO
    assert table.columnCount() == 3


def test_click_centres_on_cell(two_reads, qtbot):
    session, dock, ids = two_reads
    click_row(qtbot, dock.disagreements.native, 1)
    cell = session.project.cell_table(session.slide_id).set_index("cell_id").loc[ids[3]]
    expected = session.cells_layer.data_to_world(np.array([cell["row"], cell["col"]]))
    np.testing.assert_allclose(session.viewer.scene.camera.center[-2:], expected[-2:])
    assert session.selected_ids() == [ids[3]]


def test_click_adjudicates_second_class(two_reads, qtbot):
    session, dock, ids = two_reads
    before = session.project.count(session.slide_id)
    click_row(qtbot, dock.disagreements.native, 0)
    qtbot.mouseClick(dock.use_b.native, Qt.MouseButton.LeftButton)
    event = session.project.events(session.slide_id, cell_id=ids[1]).iloc[-1]
    assert event["action"] == "adjudicate"
    assert event["reader"] == ADJUDICATOR
    assert event["new_class"] == "LYT"
    after = session.project.count(session.slide_id)
    assert after.counts["BLA"] == before.counts["BLA"] - 1
    assert after.unadjudicated == before.unadjudicated - 1


def test_adjudication_keeps_reader_labels(two_reads, qtbot):
    session, dock, ids = two_reads
    click_row(qtbot, dock.disagreements.native, 0)
    qtbot.mouseClick(dock.use_b.native, Qt.MouseButton.LeftButton)
    primary = session.project.cell_table(session.slide_id, reader=PRIMARY).set_index("cell_id")
    second = session.project.cell_table(session.slide_id, reader=SECOND).set_index("cell_id")
    assert primary.loc[ids[1], "class"] == "BLA"
    assert second.loc[ids[1], "class"] == "LYT"


def test_adjudicate_other_class_moves_on(two_reads, qtbot):
    session, dock, ids = two_reads
    click_row(qtbot, dock.disagreements.native, 0)
    dock.other_class.value = "MON"
    qtbot.mouseClick(dock.adjudicate_button.native, Qt.MouseButton.LeftButton)
    table = dock.disagreements.native
    assert table.item(0, 3).text() == session.scheme["MON"].name(dock.language)
    assert dock.selected_row() == 1
    assert session.selected_ids() == [ids[3]]


def test_hidden_dock_updates_when_shown(make_napari_viewer, primary_read, field_path, qtbot):
    from napari_alma.widgets.launch import open_in_viewer

    project, slide_id, ids = primary_read
    project.label_cells(slide_id, ids[:2], "BLA", reader=SECOND)
    viewer = make_napari_viewer(show=True)
    session = open_in_viewer(viewer, field_path, project.folder, reader=PRIMARY,
                             predict=False)
    dock = session.docks["agreement"]
    qtbot.waitUntil(lambda: dock.native.visibleRegion().isEmpty())  # behind the count tab
    session.project.label_cells(slide_id, [ids[2]], "EBO", reader=SECOND)
    session.refresh()
    assert dock.agreement.both == 2  # not updated while hidden
    dock.native.parent().raise_()
    qtbot.waitUntil(lambda: dock.agreement is not None and dock.agreement.both == 3)
