"""Count-dock text and cells-layer styling, without Qt."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from napari_alma.core.counting import count_differential
from napari_alma.core.scheme import default_scheme
from napari_alma.widgets import points_style
from napari_alma.widgets.review_dock import class_button_text, text_color_for

SCHEME = default_scheme()
MANIFEST = Path(__file__).resolve().parents[2] / "napari_alma" / "napari.yaml"


def differential(labels, **settings):
    return count_differential(labels, SCHEME, **settings)


def test_layer_features_use_effective_label():
    table = pd.DataFrame({
        "cell_id": [1, 2], "class": ["", "BLA"], "predicted_class": ["NGS", "NGS"],
        "confidence": [0.9, 0.8],
    })
    features = points_style.layer_features(table)
    assert list(features["class"]) == ["NGS", "BLA"]
    assert list(features["reviewed"]) == [False, True]
    colors = points_style.class_colors(features["class"], SCHEME)
    np.testing.assert_allclose(colors[1], SCHEME["BLA"].rgba)
    widths = points_style.border_widths(features["reviewed"])
    assert widths[1] > widths[0]


def test_point_size_is_twenty_micrometres():
    assert points_style.point_size(0.25) == pytest.approx(80.0)
    assert points_style.point_size(0.1) == pytest.approx(200.0)
    assert points_style.point_size(None) == points_style.FALLBACK_MARKER_DIAMETER_PX


def test_class_button_text_and_contrast():
    assert class_button_text(SCHEME["BLA"], "en") == "[b] blast"
    assert class_button_text(SCHEME["BLA"], "es") == "[b] blasto"
    assert text_color_for("#ffffff") == "#000000"
    assert text_color_for("#000080") == "#ffffff"


def test_manifest_is_valid():
    npe2 = Path(sys.executable).with_name("npe2")
    result = subprocess.run([str(npe2), "validate", str(MANIFEST)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
