"""The bundled demo: a real sample smear, predicted, opened in napari or rendered headless."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

from napari_alma import samples

logger = logging.getLogger(__name__)

SAMPLE_NAME = "pbc_mosaic.tif"


def sample_path(name: str = SAMPLE_NAME) -> Path:
    """Return the path of the demo's sample image (by default the PBC mosaic)."""
    return samples.sample_path(name)


def demo_project_folder() -> Path:
    """Return the folder of the demo project, where demo corrections are kept."""
    return Path(os.environ.get("ALMA_DEMO_PROJECT", Path.home() / ".napari-alma" / "demo"))


def run_demo(headless_out: str | Path | None = None) -> dict:
    """Predict the sample smear and open it in napari, or write a screenshot and the counts.

    Parameters
    ----------
    headless_out : str or Path, optional
        Without a window: write ``screenshot.png``, ``counts.json`` and the project here.

    Returns
    -------
    dict
        ``screenshot`` and ``counts_file`` paths and the ``counts`` (``count --json`` shape);
        empty when a window was opened.
    """
    if headless_out is None:
        return _run_interactive()
    return _run_headless(Path(headless_out))


def _run_interactive() -> dict:
    import napari

    from napari_alma.widgets.launch import open_in_viewer

    viewer = napari.Viewer(title="napari-alma demo")
    open_in_viewer(viewer, sample_path(), demo_project_folder())
    napari.run()
    return {}


def _run_headless(out_dir: Path) -> dict:
    from napari_alma.learning.predict import predict_slide
    from napari_alma.store.project import Project

    out_dir.mkdir(parents=True, exist_ok=True)
    project = Project(out_dir / "project")
    result = predict_slide(project, sample_path())
    counts = project.count(result["slide_id"]).to_dict()
    counts_file = out_dir / "counts.json"
    counts_file.write_text(json.dumps(counts, indent=2), encoding="utf-8")
    screenshot = out_dir / "screenshot.png"
    if _has_display():
        _napari_screenshot(project.folder, screenshot)
    else:
        logger.warning("No display: rendering the screenshot with matplotlib instead of napari.")
        _matplotlib_screenshot(project, result["slide_id"], screenshot)
    project.close()
    return {"screenshot": str(screenshot), "counts_file": str(counts_file), "counts": counts}


def _has_display() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _napari_screenshot(project_folder: Path, path: Path) -> None:
    import napari

    from napari_alma.widgets.launch import open_in_viewer

    viewer = napari.Viewer(title="napari-alma demo", show=True)
    try:
        open_in_viewer(viewer, sample_path(), project_folder, predict=False)
        viewer.window.resize(1600, 1000)
        _process_qt_events()
        viewer.reset_view()
        viewer.screenshot(str(path), canvas_only=False)
    finally:
        viewer.close()


def _process_qt_events() -> None:
    """Let Qt lay out the docks, which a window shown a moment ago has not done yet."""
    from qtpy.QtWidgets import QApplication

    QApplication.processEvents()


def _matplotlib_screenshot(project, slide_id: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle
    from skimage import io

    from napari_alma.store.labels import effective_labels
    from napari_alma.widgets.points_style import MARKER_DIAMETER_UM

    table = project.cell_table(slide_id)
    labels = effective_labels(table)
    radius = MARKER_DIAMETER_UM / 2 / project.slide(slide_id)["mpp"]
    figure, axes = plt.subplots(figsize=(12, 10), dpi=100)
    axes.imshow(io.imread(sample_path()))
    for (_, cell), code in zip(table.iterrows(), labels):
        centre = (cell["col"], cell["row"])
        axes.add_patch(Circle(centre, radius, fill=False, linewidth=2,
                              edgecolor=project.scheme[code].color))
        axes.annotate(code, (cell["col"], cell["row"] - 1.2 * radius), color="black",
                      ha="center", fontsize=9, backgroundcolor="white")
    axes.set_axis_off()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
