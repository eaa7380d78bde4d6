"""The retrain dock and the prediction scopes of the model dock, under Xvfb."""

import numpy as np
import pandas as pd
import pytest
from skimage import io

from napari_alma.learning import al_format, pbc
from napari_alma.learning.crops import extract_crops
from napari_alma.learning.model import default_model_path
from napari_alma.widgets.model_dock import SCOPE_SLIDE, SCOPE_VIEW
from napari_alma.widgets.regions import shape_regions, view_region, viewer_camera
from napari_alma.widgets.train_dock import TrainDock

pytestmark = pytest.mark.gui

PER_CLASS = 2


@pytest.fixture(scope="module")
def small_export(data_root, tmp_path_factory):
    """20 real PBC cells, two per class, each image its own slide; crops of 32 px."""
    records = pbc.read_pbc(data_root / "pbc_wbc_yolo")
    mpp = pbc.estimate_mpp(records)["mpp"]
    chosen, seen = [], {}
    for record in records:
        code = pbc.PBC_TO_SCHEME.get(record["prefix"])
        if code and seen.get(code, 0) < PER_CLASS:
            seen[code] = seen.get(code, 0) + 1
            chosen.append((record, code))
    crops = np.stack([
        extract_crops(io.imread(r["image"])[..., :3], [(r["row"], r["col"])], mpp,
                      pbc.CROP_UM, 32)[0]
        for r, _ in chosen
    ])
    table = pd.DataFrame({"slide_id": [r["cell_id"] for r, _ in chosen],
                          "cell_id": [r["cell_id"] for r, _ in chosen],
                          "class": [code for _, code in chosen]})
    out = tmp_path_factory.mktemp("al") / "small"
    return al_format.write_al_export(out, crops, table, {"crop_um": pbc.CROP_UM})


def test_train_dock_trains_and_activates(review, qtbot, small_export, monkeypatch):
    dock = review.docks["train"]
    questions = []
    monkeypatch.setattr(TrainDock, "ask_activation",
                        lambda _dock, text: questions.append(text) or True)
    dock.data.value = "folder"
    dock.folder.value = small_export
    dock.base.value = default_model_path()
    dock.epochs.value = 1
    dock.device.value = "cpu"
    worker = dock.start_training()
    assert not dock.cancel_button.native.isHidden()
    with qtbot.waitSignal(worker.finished, timeout=120_000):
        pass
    qtbot.waitUntil(lambda: dock.worker is None)
    version = dock.result["card"]["version"]
    assert (review.project.models_folder / version / "confusion.png").is_file()
    assert "balanced" in dock.metrics.value
    assert not dock.confusion.native.isHidden()
    assert len(questions) == 1
    assert review.project.get_meta("active_model").endswith(version)


def test_train_dock_cancel_keeps_no_model(review, qtbot, small_export):
    dock = review.docks["train"]
    dock.data.value = "folder"
    dock.folder.value = small_export
    dock.base.value = default_model_path()
    dock.epochs.value = 1
    dock.device.value = "cpu"
    worker = dock.start_training()
    dock.cancel_training()
    with qtbot.waitSignal(worker.finished, timeout=120_000):
        pass
    qtbot.waitUntil(lambda: dock.worker is None)
    assert dock.result is None
    versions = [p for p in review.project.models_folder.glob("*") if not p.name.startswith(".")]
    assert versions == []
    assert dock.train_button.enabled


def test_scope_lists_shapes_layers(review):
    dock = review.docks["model"]
    review.viewer.add_shapes(name="area")
    values = [value for _, value in dock._scope_choices()]
    assert values == [SCOPE_SLIDE, SCOPE_VIEW, "area"]


def test_shape_region_in_level0_pixels(review):
    image = review.image_layer
    scale = np.asarray(image.scale[-2:])
    rectangle = np.array([[100, 200], [100, 300], [150, 300], [150, 200]]) * scale
    layer = review.viewer.add_shapes([rectangle], shape_type="rectangle", name="area")
    assert shape_regions(layer, image) == [(100, 200, 151, 301)]


def test_view_region_clipped_to_slide(review):
    review.viewer.reset_view()
    r0, c0, r1, c1 = view_region(review.viewer, review.image_layer)
    assert (r0, c0) == (0, 0)
    assert (r1, c1) == (480, 640)


def test_view_region_after_zoom(review):
    viewer = review.viewer
    scale = np.asarray(review.image_layer.scale[-2:])
    camera = viewer_camera(viewer)
    camera.center = (240 * scale[0], 320 * scale[1])
    camera.zoom = 4.0 / scale[0]
    r0, c0, r1, c1 = view_region(viewer, review.image_layer)
    height, width = viewer.canvas.size
    assert r1 - r0 == pytest.approx(height / 4, abs=2)
    assert c1 - c0 == pytest.approx(min(width / 4, 640), abs=2)


def test_run_prediction_regions_with_bald(field_path, tmp_path):
    from napari_alma.store.project import Project
    from napari_alma.widgets.model_dock import run_prediction

    fractions = []
    result = run_prediction(tmp_path / "p", str(field_path), None,
                            lambda fraction, _message: fractions.append(fraction),
                            lambda: False, regions=[(0, 0, 480, 320), (0, 320, 480, 640)],
                            bald_passes=3)
    with Project(tmp_path / "p") as project:
        table = project.cell_table(project.slides()["slide_id"][0])
    assert result["regions"] == 2
    assert len(table) >= 1
    assert len(table) == len(result["new"])
    assert table["bald"].notna().all()
    assert fractions == sorted(fractions)
    assert fractions[-1] == pytest.approx(1.0)
