"""The pixel-size dock on a real BCCD field, whose JPEG states no pixel size."""

import numpy as np
import pytest

from napari_alma.widgets import points_style
from napari_alma.widgets.launch import open_in_viewer

pytestmark = pytest.mark.gui

MPP = 0.08


def scale_bar_visible(viewer) -> bool:
    overlays = getattr(getattr(viewer, "canvas", None), "overlays", None)
    if overlays is not None:
        return bool(overlays["scale_bar"].visible)
    return bool(viewer.scale_bar.visible)


def test_dock_says_pixel_size_unknown(review):
    dock = review.docks["pixel_size"]
    assert review.slide["mpp"] is None
    assert "no pixel size" in dock.status.value


def test_set_stores_with_slide(review):
    dock = review.docks["pixel_size"]
    dock.mpp.value = MPP
    dock.apply.clicked.emit()
    slide = review.project.slide(review.slide_id)
    assert slide["mpp"] == pytest.approx(MPP)
    assert slide["mpp_source"] == "user"
    assert "set by a reader" in dock.status.value


def test_set_rescales_layers(review):
    review.docks["pixel_size"].set_mpp(MPP)
    np.testing.assert_allclose(review.image_layer.scale[-2:], (MPP, MPP))
    np.testing.assert_allclose(review.cells_layer.scale[-2:], (MPP, MPP))
    assert review.cells_layer.size[0] == pytest.approx(points_style.point_size(MPP))
    assert scale_bar_visible(review.viewer)


def test_cells_stay_on_image(review):
    before = review.cells_layer.data.copy()
    review.docks["pixel_size"].set_mpp(MPP)
    np.testing.assert_allclose(review.cells_layer.data, before)
    world = review.cells_layer.data_to_world(before[0])
    np.testing.assert_allclose(world, before[0] * MPP)


def test_implausible_value_rejected(review):
    with pytest.raises(ValueError, match="0.01-10"):
        review.docks["pixel_size"].set_mpp(50.0)
    assert review.project.slide(review.slide_id)["mpp"] is None


def test_reopen_uses_stored_value(make_napari_viewer, review, field_path):
    review.docks["pixel_size"].set_mpp(MPP)
    session = open_in_viewer(make_napari_viewer(), field_path, review.project.folder,
                             predict=False)
    np.testing.assert_allclose(session.image_layer.scale[-2:], (MPP, MPP))
    assert "set by a reader" in session.docks["pixel_size"].status.value
    session.project.close()


def test_open_notifies_missing_pixel_size(make_napari_viewer, field_path, tmp_path,
                                          monkeypatch):
    import napari.utils.notifications as notifications

    warnings_shown = []
    monkeypatch.setattr(notifications, "show_warning", warnings_shown.append)
    session = open_in_viewer(make_napari_viewer(), field_path, tmp_path / "p", predict=False)
    assert any("Pixel size" in message for message in warnings_shown)
    session.project.close()


def test_spanish_notice(make_napari_viewer, field_path, tmp_path, monkeypatch):
    import napari.utils.notifications as notifications

    warnings_shown = []
    monkeypatch.setenv("ALMA_LANG", "es")
    monkeypatch.setattr(notifications, "show_warning", warnings_shown.append)
    session = open_in_viewer(make_napari_viewer(), field_path, tmp_path / "p", predict=False)
    assert any("Tamaño de píxel" in message for message in warnings_shown)
    session.project.close()
