"""The gallery dock on a real BCCD field: groups, clicks, keys, drops, filters and sorting."""

import json

import numpy as np
import pytest
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QWidget

from napari_alma.core import uncertainty
from napari_alma.widgets import gallery_data
from napari_alma.widgets.gallery_model import CELL_ID_ROLE, cells_mime_data

READER = "tester"  # the reader the review fixture opens the slide with

pytestmark = pytest.mark.gui


def show_gallery(session, qtbot):
    """Show the viewer's window with the gallery tab in front; return the gallery dock."""
    from qtpy.QtWidgets import QDockWidget

    dock = session.docks["gallery"]
    session.viewer.window.show()
    wrapper = dock.native.parent()
    while not isinstance(wrapper, QDockWidget):
        wrapper = wrapper.parent()
    wrapper.raise_()
    qtbot.waitExposed(dock.view)
    return dock


@pytest.fixture
def gallery(review, qtbot):
    dock = show_gallery(review, qtbot)
    yield dock
    dock.crops.cancel_pending()
    dock.crops.wait()


def stored_classes(session):
    table = session.project.cell_table(session.slide_id, reader=READER).set_index("cell_id")
    return table["class"]


def click(qtbot, dock, row):
    view = dock.view
    rect = view.visualRect(dock.model.index(row, 0))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_groups_follow_effective_labels(gallery, review):
    features = review.cells_layer.features
    expected = features["class"].value_counts()
    counts = gallery_data.group_counts(gallery.items, review.scheme)
    for code in review.scheme.codes:
        assert counts[code] == expected.get(code, 0), code
    assert gallery.model.rowCount() == len(features)
    gallery.set_group("NGS")
    assert gallery.model.rowCount() == expected["NGS"]
    shown = features.set_index("cell_id").loc[gallery.shown_ids(), "class"]
    assert set(shown) == {"NGS"}


def test_group_list_shows_counts_and_keys(gallery, review):
    n_ngs = int((review.cells_layer.features["class"] == "NGS").sum())
    row = review.scheme.codes.index("NGS") + 1
    assert gallery.groups.item(row).text() == f"[s] segmented neutrophil ({n_ngs})"


def test_all_groups_ordered_by_scheme(gallery, review):
    classes = gallery.items.loc[gallery.shown_ids(), "class"]
    ranks = [review.scheme.codes.index(code) for code in classes]
    assert ranks == sorted(ranks)


def test_click_centres_and_selects(gallery, review, qtbot):
    click(qtbot, gallery, 2)
    cell_id = gallery.shown_ids()[2]
    assert review.selected_ids() == [cell_id]
    item = gallery.items.loc[cell_id]
    expected = review.cells_layer.data_to_world(np.array([item["row"], item["col"]]))
    np.testing.assert_allclose(review.viewer.scene.camera.center[-2:], expected, atol=1e-6)


def test_class_key_reclassifies_and_stores(gallery, review, qtbot):
    click(qtbot, gallery, 0)
    cell_id = gallery.shown_ids()[0]
    qtbot.keyClick(gallery.view, Qt.Key.Key_B)
    assert stored_classes(review)[cell_id] == "BLA"
    events = review.project.events(review.slide_id)
    assert list(events["action"]) == ["label"]
    assert events["reader"].iloc[0] == READER
    assert gallery.items.loc[cell_id, "class"] == "BLA"
    assert gallery.shown_ids()[0] == cell_id, "BLA is the scheme's first group"


def test_class_key_advances_to_next_cell(gallery, review, qtbot):
    gallery.set_group("NGS")
    first, second = gallery.shown_ids()[:2]
    click(qtbot, gallery, 0)
    qtbot.keyClick(gallery.view, Qt.Key.Key_L)
    assert first not in gallery.shown_ids(), "the cell left the NGS group"
    assert gallery.selected_ids() == [second]
    assert review.selected_ids() == [second]


def test_enter_marks_reviewed(gallery, review, qtbot):
    click(qtbot, gallery, 1)
    cell_id = gallery.shown_ids()[1]
    qtbot.keyClick(gallery.view, Qt.Key.Key_Return)
    events = review.project.events(review.slide_id)
    assert list(events["action"]) == ["review"]
    assert int(events["cell_id"].iloc[0]) == cell_id


def test_unused_key_reaches_napari(gallery, review, qtbot):
    review.viewer.layers.selection.active = review.cells_layer
    click(qtbot, gallery, 0)
    qtbot.keyClick(gallery.view, Qt.Key.Key_3)
    assert review.project.events(review.slide_id).empty
    assert str(review.cells_layer.mode) == "select"


def test_drop_on_group_moves_cells(gallery, review):
    ids = gallery.shown_ids()[:2]
    gallery.groups.cells_dropped.emit(ids, "EOS")
    classes = stored_classes(review)
    assert list(classes[ids]) == ["EOS", "EOS"]


def test_drop_on_crop_takes_its_class(gallery, review):
    gallery.set_group("")
    shown = gallery.shown_ids()
    classes = gallery.items.loc[shown, "class"].to_numpy()
    source = shown[0]
    target_row = int(np.flatnonzero(classes != classes[0])[0])
    target_class = classes[target_row]
    gallery.model.dropMimeData(cells_mime_data([source]), Qt.DropAction.MoveAction, -1, -1,
                               gallery.model.index(target_row, 0))
    assert stored_classes(review)[source] == target_class


def test_drop_in_own_group_stores_nothing(gallery, review):
    shown = gallery.shown_ids()
    gallery.model.dropMimeData(cells_mime_data(shown[:1]), Qt.DropAction.MoveAction, -1, -1,
                               gallery.model.index(0, 0))
    assert review.project.events(review.slide_id).empty


def test_not_reviewed_filter(gallery, review, qtbot):
    ids = gallery.shown_ids()[:3]
    review.select_ids(ids)
    review.mark_reviewed_selected()
    total = len(review.cells_layer.features)
    gallery.not_reviewed.setChecked(True)
    assert gallery.model.rowCount() == total - 3
    assert not set(ids) & set(gallery.shown_ids())
    gallery.not_reviewed.setChecked(False)
    assert gallery.model.rowCount() == total


def test_filter_drops_cell_once_reviewed(gallery, review, qtbot):
    gallery.not_reviewed.setChecked(True)
    before = gallery.model.rowCount()
    click(qtbot, gallery, 0)
    cell_id = gallery.shown_ids()[0]
    qtbot.keyClick(gallery.view, Qt.Key.Key_Return)
    assert gallery.model.rowCount() == before - 1
    assert cell_id not in gallery.shown_ids()


def test_sort_by_entropy(gallery, review):
    gallery.set_group("")
    gallery.set_sort("entropy")
    table = review.project.cell_table(review.slide_id).set_index("cell_id")
    for code in set(gallery.items["class"]):
        group_ids = [c for c in gallery.shown_ids() if gallery.items.loc[c, "class"] == code]
        probabilities = [list(json.loads(table.loc[c, "probabilities"]).values())
                         for c in group_ids]
        scores = uncertainty.entropy(np.asarray(probabilities))
        assert np.all(np.diff(scores) <= 1e-12), code


def test_crops_read_lazily(gallery, qtbot):
    qtbot.waitUntil(lambda: len(gallery.crops.pixmaps) > 0, timeout=15_000)
    index = gallery.model.index(0, 0)
    qtbot.waitUntil(lambda: index.data(Qt.ItemDataRole.DecorationRole) is not None,
                    timeout=15_000)
    pixmap = index.data(Qt.ItemDataRole.DecorationRole)
    assert pixmap.width() == pixmap.height() == 72


def test_tooltip_names_cell(gallery):
    index = gallery.model.index(0, 0)
    text = index.data(Qt.ItemDataRole.ToolTipRole)
    assert text.startswith(f"Cell {index.data(CELL_ID_ROLE)}:")
    assert "Not reviewed" in text


def test_store_change_updates_without_reset(gallery, review, qtbot):
    resets = []
    gallery.model.modelReset.connect(lambda: resets.append(True))
    cell_id = gallery.shown_ids()[0]
    review.select_ids([cell_id])
    review.apply_class("MON")
    assert gallery.items.loc[cell_id, "class"] == "MON"
    assert cell_id in gallery.shown_ids()
    assert resets == []


def test_ten_thousand_cells_without_widgets(make_napari_viewer, tmp_path, field_path, qtbot):
    from napari_alma.slides.reader import fingerprint, open_slide
    from napari_alma.store.project import Project
    from napari_alma.widgets.launch import open_in_viewer

    slide = open_slide(field_path)
    rows, cols = slide.shape[:2]
    rng = np.random.default_rng(1)
    positions = rng.uniform((0, 0), (rows - 1, cols - 1), size=(10_000, 2))
    classes = ["NGS", "LYT", "EOS", "MON", "OTH"]
    probabilities = rng.dirichlet(np.ones(len(classes)), size=len(positions))
    with Project(tmp_path / "big") as project:
        slide_id = project.register_slide(field_path.resolve(), fingerprint(field_path),
                                          (rows, cols), 0.25)
        project.add_predictions(slide_id, positions, probabilities, classes, "test", 0.0)
    viewer = make_napari_viewer()
    session = open_in_viewer(viewer, field_path, tmp_path / "big", reader=READER,
                             predict=False)
    # Software OpenGL under Xvfb takes seconds to draw 10,000 markers, which the gallery
    # does not need.
    session.cells_layer.visible = False
    dock = show_gallery(session, qtbot)
    qtbot.waitUntil(lambda: len(dock.crops.pixmaps) > 0, timeout=15_000)
    assert dock.model.rowCount() == 10_000
    assert len(dock.native.findChildren(QWidget)) < 200
    assert dock.crops.reads < 500, "only the visible crops are read"
    dock.crops.cancel_pending()
    dock.crops.wait()
    session.project.close()


def test_crops_follow_new_pixel_size(gallery, review):
    assert gallery.crops.mpp == 1.0
    review.project.set_mpp(review.slide_id, 0.1, "manual", READER)
    review.refresh()
    assert gallery.crops.mpp == pytest.approx(0.1)
    assert gallery.crops.crop_um == pytest.approx(20.0)
    assert gallery.crops.generation == 1


def test_canvas_selection_shown_in_gallery(gallery, review):
    cell_id = gallery.shown_ids()[3]
    centre = tuple(review.viewer.scene.camera.center)
    review.select_ids([cell_id])
    assert gallery.selected_ids() == [cell_id]
    assert gallery.view.currentIndex().row() == 3
    assert tuple(review.viewer.scene.camera.center) == centre


def test_hidden_cell_keeps_canvas_selection(gallery, review):
    gallery.set_group("LYT")
    other = [c for c in review.cells_layer.features["cell_id"]
             if gallery.items.loc[c, "class"] != "LYT"][0]
    review.select_ids([int(other)])
    assert gallery.selected_ids() == []
    assert review.selected_ids() == [int(other)]


def test_crops_read_off_gui_thread(gallery, qtbot, monkeypatch):
    import threading

    threads = []
    original = type(gallery.crops).read

    def recording_read(cache, *args):
        threads.append(threading.get_ident())
        return original(cache, *args)

    monkeypatch.setattr(type(gallery.crops), "read", recording_read)
    gallery.crops.set_scale(0.5, 20.0)
    gallery.view.viewport().update()
    qtbot.waitUntil(lambda: len(gallery.crops.pixmaps) > 0, timeout=15_000)
    assert threads
    assert threading.get_ident() not in threads
