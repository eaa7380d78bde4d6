"""Opening slides (empty, and with a real prediction) and the model dock."""

import time

import numpy as np
import pytest
from conftest import save_tiny_model

from napari_alma.slides.reader import fingerprint, open_slide
from napari_alma.store.project import Project
from napari_alma.widgets.launch import open_in_viewer
from napari_alma.widgets.model_dock import ACTIVE_MODEL_KEY, list_models
from napari_alma.widgets.session import get_session

pytestmark = pytest.mark.gui


def test_empty_slide_accepts_added_cells(make_napari_viewer, field_path, tmp_path):
    viewer = make_napari_viewer()
    session = open_in_viewer(viewer, field_path, tmp_path / "p", reader="tester", predict=False)
    assert get_session(viewer) is session
    assert len(session.cells_layer.data) == 0
    assert session.docks["count"].differential.total_counted == 0

    session.cells_layer.add([120.0, 300.0])
    cell_id = session.add_cell_at(session.cells_layer.data_to_world([200.0, 100.0]), "BLA")
    table = session.project.cell_table(session.slide_id)
    assert len(table) == 2
    assert list(table["source"]) == ["added", "added"]
    assert table.set_index("cell_id").loc[cell_id, "class"] == "BLA"
    assert len(session.cells_layer.data) == 2
    assert session.docks["count"].differential.counts["BLA"] == 1


def test_open_predicts_cells_once(make_napari_viewer, field_path, tmp_path):
    model = save_tiny_model(tmp_path / "model", "tiny-1")
    viewer = make_napari_viewer()
    session = open_in_viewer(viewer, field_path, tmp_path / "p", model_dir=model)
    table = session.project.cell_table(session.slide_id)
    assert len(table) > 0
    assert set(table["model_version"]) == {"tiny-1"}
    assert len(session.cells_layer.data) == len(table)
    slide = session.slide
    assert slide["mpp"] > 0
    np.testing.assert_allclose(session.image_layer.scale[-2:], [slide["mpp"]] * 2)
    np.testing.assert_allclose(session.cells_layer.scale, session.image_layer.scale[-2:])
    session.project.close()

    second = open_in_viewer(make_napari_viewer(), field_path, tmp_path / "p", model_dir=model)
    assert len(second.project.cell_table(second.slide_id)) == len(table)


def test_model_dock_lists_and_switches(review, tmp_path):
    project = review.project
    save_tiny_model(project.models_folder / "v2", "tiny-2")
    (project.models_folder / "broken").mkdir()
    dock = review.docks["model"]
    dock.reload()
    versions = [entry.version for entry in list_models(project)]
    assert "tiny-2" in versions
    assert len(versions) == len(dock.models.choices)
    dock.models.value = next(e for e in dock.entries if e.version == "tiny-2")
    dock.switch_model()
    assert project.get_meta(ACTIVE_MODEL_KEY) == str(project.models_folder / "v2")
    assert "tiny-2" in dock.active.value


def test_model_list_survives_layer_changes(review):
    dock = review.docks["model"]
    before = dock.models.choices
    assert len(before) >= 1
    # napari calls reset_choices() on docked magicgui widgets when layers change.
    review.viewer.add_points(np.zeros((1, 2)), name="other")
    assert dock.models.choices == before
    assert dock.models.value is not None


def test_model_dock_predicts_in_worker(review, qtbot):
    project = review.project
    save_tiny_model(project.models_folder / "v3", "tiny-3")
    dock = review.docks["model"]
    dock.reload()
    dock.models.value = next(e for e in dock.entries if e.version == "tiny-3")
    dock.switch_model()
    progress = []
    dock.job._reporter.progressed.connect(lambda fraction, _message: progress.append(fraction))
    worker = dock.start_prediction()
    assert worker is not None
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        pass
    qtbot.waitUntil(lambda: dock.worker is None)
    table = project.cell_table(review.slide_id)
    assert "tiny-3" in set(table["model_version"])
    assert progress and progress[-1] == pytest.approx(1.0)
    assert len(review.cells_layer.data) == len(table)
    assert dock.progress.native.isHidden()


def test_model_dock_cancel_keeps_store(review, qtbot, monkeypatch):
    from napari_alma.widgets import model_dock

    real_run = model_dock.run_prediction

    def run_after_cancel(folder, slide_path, model_dir, progress, cancel, **options):
        deadline = time.monotonic() + 30
        while not cancel() and time.monotonic() < deadline:  # wait for the cancel click
            time.sleep(0.01)
        return real_run(folder, slide_path, model_dir, progress, cancel, **options)

    monkeypatch.setattr(model_dock, "run_prediction", run_after_cancel)
    dock = review.docks["model"]
    save_tiny_model(review.project.models_folder / "v4", "tiny-4")
    dock.reload()
    dock.models.value = next(e for e in dock.entries if e.version == "tiny-4")
    dock.switch_model()
    before = len(review.project.cell_table(review.slide_id))
    worker = dock.start_prediction()
    assert not dock.cancel_button.native.isHidden()
    with qtbot.waitSignal(worker.finished, timeout=60_000):
        dock.cancel_button.native.click()
    qtbot.waitUntil(lambda: dock.worker is None)
    table = review.project.cell_table(review.slide_id)
    assert len(table) == before
    assert "tiny-4" not in set(table["model_version"])
    assert dock.predict_button.enabled


def test_registered_slide_is_reused(make_napari_viewer, field_path, tmp_path):
    with Project(tmp_path / "p") as project:
        slide = open_slide(field_path)
        slide_id = project.register_slide(field_path.resolve(), fingerprint(field_path),
                                          tuple(slide.shape[:2]))
    session = open_in_viewer(make_napari_viewer(), field_path, tmp_path / "p", predict=False)
    assert session.slide_id == slide_id


def test_blank_field_without_pixel_size_opens_empty(make_napari_viewer, tmp_path):
    from skimage import io

    blank = tmp_path / "blank.png"
    io.imsave(blank, np.full((200, 300, 3), 250, np.uint8), check_contrast=False)
    viewer = make_napari_viewer()
    session = open_in_viewer(viewer, blank, tmp_path / "p", reader="tester")
    assert len(session.cells_layer.data) == 0
    assert session.project.slide(session.slide_id)["mpp"] is None
    cell_id = session.add_cell_at((100.0, 150.0))
    assert session.project.cell_table(session.slide_id)["cell_id"].tolist() == [cell_id]
    session.project.close()
