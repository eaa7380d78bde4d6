"""Count-dock text and cells-layer styling, without Qt."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from napari_alma.core.counting import count_differential
from napari_alma.core.scheme import default_scheme
from napari_alma.widgets import count_text, points_style
from napari_alma.widgets.review_dock import class_button_text, text_color_for

SCHEME = default_scheme()
MANIFEST = Path(__file__).resolve().parents[2] / "napari_alma" / "napari.yaml"


def differential(labels, **settings):
    return count_differential(labels, SCHEME, **settings)


def test_counted_rows_follow_counts():
    result = differential(["BLA"] * 5 + ["NGS"] * 95 + ["ART"] * 3)
    rows = {row[0]: row for row in count_text.counted_rows(result, SCHEME, "en")}
    assert rows["blast"][1:3] == ["5", "5.0"]
    low, high = result.percent_ci95["BLA"]
    assert rows["blast"][3] == f"{low:.1f}-{high:.1f}"
    assert len(rows) == sum(c.counted for c in SCHEME.classes)
    assert count_text.excluded_rows(result, SCHEME, "en") == [["artefact", "3"]]


def test_summary_and_spanish_names():
    result = differential(["BLA"] * 10 + ["EBO"] * 30 + ["NGS"] * 60, target=300)
    lines = count_text.summary_lines(result, "es")
    assert lines[0] == "Contadas: 100 de 300 células"
    assert lines[2].startswith("Blastos: 10.0%")
    assert "2.33:1" in lines[3]
    assert count_text.counted_rows(result, SCHEME, "es")[0][0] == "blasto"


def test_warnings_name_crossed_thresholds():
    result = differential(["BLA"] * 24 + ["NGS"] * 476)
    warnings = count_text.warning_lines(result, "en")
    crossing = [w for w in warnings if "crosses" in w]
    assert crossing == [
        "The blast % interval crosses 5%: count more cells or ask for a second read."
    ]


def test_hints_and_empty_count():
    result = differential(["BLA"] * 30 + ["NGS"] * 70)
    hints = count_text.hint_lines(result, "en")
    assert hints[0] == "WHO 2022: >= 20% (AML range)"
    assert "not a diagnosis" in hints[-1]
    empty = differential([])
    assert count_text.hint_lines(empty, "en") == []
    assert count_text.warning_lines(empty, "en") == ["No cells counted yet."]
    assert "no cells counted" in count_text.summary_lines(empty, "en")[2]


def test_layer_features_use_effective_label():
    table = pd.DataFrame({
        "cell_id": [1, 2], "class": ["", "BLA"], "predicted_class": ["NGS", "NGS"],
        "confidence": [0.9, 0.8],
    })
    features = points_style.layer_features(table)
    assert list(features["class"]) == ["NGS", "BLA"]
    assert list(features["reviewed"]) == [False, True]
    colors = points_style.face_colors(features["class"], SCHEME)
    np.testing.assert_allclose(colors[1], SCHEME["BLA"].rgba)
    widths = points_style.border_widths(features["reviewed"])
    assert widths[1] > widths[0]


def test_point_size_is_twelve_micrometres():
    assert points_style.point_size(0.25) == pytest.approx(48.0)
    assert points_style.point_size(None) == points_style.FALLBACK_CELL_DIAMETER_PX


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
