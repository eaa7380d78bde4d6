"""The bundled samples open through the napari reader with their pixel size."""

import pytest

from napari_alma import samples


def test_pbc_mosaic_layer_data():
    [(data, kwargs, layer_type)] = samples.pbc_mosaic()
    assert layer_type == "image"
    assert data.shape == (1452, 1800, 3)
    assert kwargs["rgb"] is True
    # The TIFF carries the PBC pixel size estimated from neutrophil boxes.
    assert kwargs["scale"][0] == pytest.approx(0.09, abs=0.02)


def test_bccd_field_layer_data():
    [(data, kwargs, _)] = samples.bccd_field()
    assert data.shape == (480, 640, 3)
    # BCCD states no pixel size: no scale, so napari shows level-0 pixels.
    assert "scale" not in kwargs
    assert kwargs["metadata"]["napari_alma"]["mpp"] is None


def test_samples_have_attribution():
    text = samples.sample_path("ATTRIBUTION.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in text
    assert "MIT" in text
    assert "Acevedo" in text
