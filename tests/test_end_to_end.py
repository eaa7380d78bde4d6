"""The whole loop on a real bone-marrow field, driven through the napari docks under Xvfb.

The test opens a SegPC-2021 marrow aspirate field and lets the shipped model detect and
classify its cells. It corrects three cells through the review dock (a button and two
keys), marks the rest reviewed, counts and exports the active-learning set. It then
fine-tunes one epoch from the shipped model, switches the plugin to the new version and
predicts again without losing a label.
"""

import json

import numpy as np
import pytest
from qtpy.QtCore import Qt

from napari_alma.learning.export import export_active_learning
from napari_alma.learning.model import default_model_path, load_model
from napari_alma.learning.train import train_model
from napari_alma.widgets.launch import open_in_viewer

pytestmark = [pytest.mark.gui, pytest.mark.slow]

READER = "dra-ruiz"
FIELD = "1991.jpg"


@pytest.fixture
def session(make_napari_viewer, data_root, tmp_path):
    field = data_root / "segpc2021_bm_plasma_cells" / "mini_test" / "images" / FIELD
    viewer = make_napari_viewer()
    session = open_in_viewer(viewer, field, tmp_path / "project", reader=READER)
    yield session
    session.project.close()


def _press(qtbot, session, key):
    qtbot.keyClick(session.viewer.window._qt_viewer.canvas.native, key)


def _correct_three_cells(session, qtbot) -> dict[int, str]:
    ids = [int(c) for c in session.cells_layer.features["cell_id"][:3]]
    session.select_ids([ids[0]])
    qtbot.mouseClick(session.docks["review"].class_buttons["PLM"].native,
                     Qt.MouseButton.LeftButton)
    session.select_ids([ids[1]])
    session.viewer.layers.selection.active = session.image_layer
    _press(qtbot, session, Qt.Key.Key_B)
    session.select_ids([ids[2]])
    session.viewer.layers.selection.active = session.cells_layer
    _press(qtbot, session, Qt.Key.Key_L)
    return {ids[0]: "PLM", ids[1]: "BLA", ids[2]: "LYT"}


def test_review_loop_end_to_end(session, qtbot, tmp_path):
    project, slide_id = session.project, session.slide_id
    table = project.cell_table(slide_id)
    assert len(table) >= 5, "the marrow field should show several nucleated cells"
    default_version = load_model(default_model_path()).version
    assert set(table["model_version"]) == {default_version}
    assert project.slide(slide_id)["mpp_source"] == "estimated"

    corrections = _correct_three_cells(session, qtbot)
    labelled = project.cell_table(slide_id).set_index("cell_id")
    for cell_id, code in corrections.items():
        assert labelled.loc[cell_id, "class"] == code
        assert labelled.loc[cell_id, "reader"] == READER
        assert labelled.loc[cell_id, "updated_at"].endswith("+00:00")
    events = project.events(slide_id)
    assert len(events[events["action"] == "label"]) == 3

    rest = [int(c) for c in labelled.index if c not in corrections]
    session.select_ids(rest)
    _press(qtbot, session, Qt.Key.Key_Return)
    differential = project.count(slide_id)
    assert differential.unreviewed == 0
    assert differential.counts["PLM"] >= 1
    assert differential.counts["BLA"] >= 1
    count_dock = session.docks["count"]
    assert count_dock.differential.to_dict() == differential.to_dict()
    assert f"{differential.total_counted}" in count_dock.summary.value

    export = export_active_learning(project, tmp_path / "al")
    manifest = json.loads((export / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["n_cells"] == len(labelled)
    assert manifest["class_counts"]["BLA"] >= 1
    assert len(list((export / "crops").rglob("*.png"))) == len(labelled)

    new_model = tmp_path / "models" / "v2"
    card = train_model(export, new_model, from_model=default_model_path(), device="cpu",
                       epochs=1, version="test-v2")
    assert card["parent_version"] == default_version
    assert "BLA" in card["classes"]
    assert "PLM" in card["classes"]

    dock = session.docks["model"]
    project.models_folder.mkdir(exist_ok=True)
    new_model.rename(project.models_folder / "v2")
    dock.reload()
    dock.models.value = next(e for e in dock.entries if e.version == "test-v2")
    dock.switch_model()
    worker = dock.start_prediction()
    with qtbot.waitSignal(worker.finished, timeout=120_000):
        pass
    qtbot.waitUntil(lambda: dock.worker is None)
    after = project.cell_table(slide_id).set_index("cell_id")
    assert set(after["model_version"]) == {"test-v2"}
    assert len(after) == len(labelled), "predicting again must not duplicate cells"
    for cell_id, code in corrections.items():
        assert after.loc[cell_id, "class"] == code
    np.testing.assert_allclose(session.cells_layer.data, after[["row", "col"]].to_numpy())
