"""Render a PNG of every napari-alma dock and of the whole window, in English and Spanish.

The docks are the widgets listed in ``napari_alma/napari.yaml``, so a new dock gets its
screenshot without a change here. The slide is the bundled BCCD sample, because its MIT
licence lets the docs show it. The shipped model predicts it into a temporary project,
and a few cells are labelled so that the docks show reviewed cells too.

Run it from the repository root under a display, for example::

    xvfb-run -a python docs/make_screenshots.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import sys
import tempfile
import warnings
from pathlib import Path

import yaml

REPOSITORY = Path(__file__).resolve().parents[1]
MANIFEST = REPOSITORY / "napari_alma" / "napari.yaml"
SAMPLE = "bccd_field.jpg"
LANGUAGES = ("en", "es")
WINDOW_SIZE = (1500, 950)
DOCK_SIZE = (440, 760)
# Larger PNGs are reduced to a 256-colour palette, which UI pictures survive well.
MAX_BYTES = 200_000
# Cells labelled before the pictures: (position in the cell table, class code).
LABELS = ((0, "NGS"), (1, "LYT"), (2, "BLA"), (3, "NIF"))


def manifest_docks() -> list[tuple[str, type]]:
    """Return (short name, widget class) for each widget the manifest contributes."""
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    commands = {c["id"]: c["python_name"] for c in manifest["contributions"]["commands"]}
    docks = []
    for widget in manifest["contributions"]["widgets"]:
        module_name, class_name = commands[widget["command"]].split(":")
        name = widget["command"].split(".", 1)[1].removesuffix("_dock")
        docks.append((name, getattr(importlib.import_module(module_name), class_name)))
    return docks


def predict_sample(project_folder: Path) -> Path:
    """Predict the BCCD sample into ``project_folder`` and label a few of its cells."""
    from napari_alma import samples
    from napari_alma.learning.predict import predict_slide
    from napari_alma.store.project import Project

    path = samples.sample_path(SAMPLE)
    with Project(project_folder) as project:
        slide_id = predict_slide(project, path)["slide_id"]
        table = project.cell_table(slide_id)
        for position, code in LABELS:
            if position < len(table):
                project.label_cells(slide_id, [int(table["cell_id"][position])], code,
                                    "screenshots")
    return path


def render(language: str, sample: Path, project_folder: Path, out: Path) -> list[Path]:
    """Open the sample in a napari window in ``language`` and save the pictures."""
    import napari

    from napari_alma.widgets.launch import open_in_viewer

    os.environ["ALMA_LANG"] = language
    # napari shows this deprecation as a pop-up over the canvas; it has no place in the docs.
    warnings.filterwarnings("ignore", message=".*PyQt5 backend is deprecated")
    viewer = napari.Viewer(title="napari-alma", show=True)
    written = []
    try:
        session = open_in_viewer(viewer, sample, project_folder, reader="screenshots",
                                 predict=False)
        viewer.window.resize(*WINDOW_SIZE)
        settle()
        written.append(grab_window(viewer, session, out / f"window_{language}.png"))
        for name, widget_class in manifest_docks():
            dock = docked_instance(viewer, session, widget_class)
            written.append(grab_dock(dock, out / f"{name}_{language}.png"))
    finally:
        viewer.close()
    return written


def docked_instance(viewer, session, widget_class):
    """Return the session's dock of ``widget_class``, docking a new one if there is none."""
    for dock in session.docks.values():
        if type(dock) is widget_class:
            return dock
    dock = widget_class(viewer)
    viewer.window.add_dock_widget(dock, name=dock.native.windowTitle(), area="right",
                                  tabify=True)
    return dock


def grab_dock(dock, path: Path) -> Path:
    """Float the dock at a fixed size, let it load, save a picture of it and dock it again."""
    wrapper = dock_wrapper(dock)
    wrapper.setFloating(True)
    wrapper.resize(*DOCK_SIZE)
    settle()
    crops = getattr(dock, "crops", None)
    if crops is not None:
        wait_for_crops(crops)
    try:
        return save_png(dock.native.grab(), path)
    finally:
        wrapper.setFloating(False)
        settle()


def dock_wrapper(dock):
    """Return the ``QDockWidget`` that napari put around ``dock``."""
    from qtpy.QtWidgets import QDockWidget

    wrapper = dock.native.parentWidget()
    while not isinstance(wrapper, QDockWidget):
        wrapper = wrapper.parentWidget()
    return wrapper


def grab_window(viewer, session, path: Path) -> Path:
    """Save the whole window with the review and count docks in front."""
    from qtpy.QtCore import Qt

    wrappers = [dock_wrapper(session.docks[name]) for name in ("review", "count")]
    for wrapper in wrappers:
        wrapper.raise_()
    viewer.window._qt_window.resizeDocks(wrappers, [DOCK_SIZE[0]] * 2, Qt.Orientation.Horizontal)
    viewer.reset_view()
    settle()
    return save_png(viewer.window._qt_window.grab(), path)


def wait_for_crops(crops, rounds: int = 100) -> None:
    """Process Qt events until the gallery's visible crops are read (at most ~10 s)."""
    import time

    for _ in range(rounds):
        settle()
        if not crops.pending:
            break
        time.sleep(0.1)
    settle()


def settle() -> None:
    """Let Qt lay out and paint what changed."""
    from qtpy.QtWidgets import QApplication

    for _ in range(5):
        QApplication.processEvents()


def save_png(pixmap, path: Path) -> Path:
    """Write ``pixmap`` as a PNG, reduced to a palette when it would exceed MAX_BYTES."""
    from PIL import Image
    from qtpy.QtCore import QBuffer, QIODevice

    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    pixmap.save(buffer, "PNG")
    data = bytes(buffer.data())
    if len(data) > MAX_BYTES:
        image = Image.open(io.BytesIO(data)).convert("RGB")
        reduced = io.BytesIO()
        image.quantize(colors=256).save(reduced, "PNG", optimize=True)
        data = reduced.getvalue()
    path.write_bytes(data)
    return path


def main(argv: list[str] | None = None) -> int:
    """Write the pictures into the output folder and list them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPOSITORY / "docs" / "screenshots",
                        help="folder for the PNG files (default: docs/screenshots)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as temporary:
        # Keep the reader's own saved keys and language out of the pictures.
        os.environ["ALMA_CONFIG_DIR"] = str(Path(temporary) / "config")
        project_folder = Path(temporary) / "project"
        sample = predict_sample(project_folder)
        for language in LANGUAGES:
            for path in render(language, sample, project_folder, args.out):
                print(f"{path} ({path.stat().st_size // 1024} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
