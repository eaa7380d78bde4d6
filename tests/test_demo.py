"""The bundled demo, headless: a screenshot and the counts of the predicted sample."""

import json

import numpy as np
import pytest
from skimage import io

from napari_alma import demo


def _check_outputs(result, out_dir):
    counts = json.loads((out_dir / "counts.json").read_text(encoding="utf-8"))
    assert counts == result["counts"]
    assert counts["total_counted"] >= 18  # 20 cells in the mosaic
    image = io.imread(result["screenshot"])
    assert image.ndim == 3
    assert min(image.shape[:2]) > 400
    assert np.std(image[..., :3]) > 10, "the screenshot must show the smear, not a blank"
    return image


def test_headless_without_display_draws_with_matplotlib(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "_has_display", lambda: False)
    result = demo.run_demo(tmp_path)
    _check_outputs(result, tmp_path)


@pytest.mark.gui
def test_headless_with_display_takes_napari_screenshot(tmp_path, monkeypatch, qapp):
    monkeypatch.setattr(demo, "_has_display", lambda: True)
    result = demo.run_demo(tmp_path)
    image = _check_outputs(result, tmp_path)
    # The window grab contains the docks beside the canvas, so it is wider than tall.
    assert image.shape[1] > image.shape[0] * 0.8
