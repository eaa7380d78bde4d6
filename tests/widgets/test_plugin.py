"""The docks as napari opens them from the plugin menu, and in Spanish."""

import pytest

from napari_alma.widgets.count_dock import CountDock
from napari_alma.widgets.review_dock import ReviewDock

pytestmark = pytest.mark.gui


def test_plugin_docks_open_without_session(make_napari_viewer):
    viewer = make_napari_viewer()
    widgets = {}
    for name in ("Review cells", "Differential count", "Model"):
        dock_widget, widgets[name] = viewer.window.add_plugin_dock_widget("napari-alma", name)
        assert dock_widget is not None
    assert isinstance(widgets["Review cells"], ReviewDock)
    assert isinstance(widgets["Differential count"], CountDock)
    assert "napari-alma open" in widgets["Differential count"].summary.value


def test_plugin_reader_opens_bccd_field(make_napari_viewer, field_path):
    viewer = make_napari_viewer()
    layers = viewer.open(field_path, plugin="napari-alma")
    layer = layers[0]
    full_resolution = layer.data[0] if layer.multiscale else layer.data
    assert full_resolution.shape == (480, 640, 3)
    assert layer.rgb


def test_spanish_docks(make_napari_viewer, project_with_cells, field_path, monkeypatch):
    from napari_alma.widgets.launch import open_in_viewer

    monkeypatch.setenv("ALMA_LANG", "es")
    project, _ = project_with_cells
    session = open_in_viewer(make_napari_viewer(), field_path, project.folder, predict=False)
    review = session.docks["review"]
    assert isinstance(review, ReviewDock)
    assert review.class_buttons["BLA"].text == "[b] blasto"
    assert review.add_button.text == "Añadir célula en el cursor"
    assert session.docks["count"].summary.value.startswith("Contadas:")
    session.project.close()

