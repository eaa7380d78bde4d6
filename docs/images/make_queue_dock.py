"""Render the review-queue dock, in English and Spanish, on the bundled PBC sample.

Run from the repository root: ``xvfb-run -a python docs/images/make_queue_dock.py``.
It predicts the PBC mosaic (CC BY 4.0) in a temporary project, labels four cells, and
writes ``queue-dock.en.png`` and ``queue-dock.es.png`` beside this script.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOCK_WIDTH = 380


def render(language: str, project_folder: Path) -> Path:
    """Open the sample in a hidden viewer in ``language`` and save the queue dock as a PNG."""
    import napari

    from napari_alma.demo import sample_path
    from napari_alma.widgets import desk
    from napari_alma.widgets.launch import open_in_viewer

    os.environ["ALMA_LANG"] = language
    viewer = napari.Viewer(show=False)
    session = open_in_viewer(viewer, sample_path(), project_folder, reader="hematologist")
    if session.project.events(session.slide_id).empty:
        session.select_ids(session.cells_layer.features["cell_id"][:4])
        session.apply_class("NGS")
    desk.go_to_next(session)
    dock = session.docks["queue"]
    dock.refresh()
    dock.native.resize(DOCK_WIDTH, dock.native.sizeHint().height())
    out = HERE / f"queue-dock.{language}.png"
    dock.native.grab().save(str(out))
    viewer.close()
    return out


def main() -> int:
    """Write the English and Spanish screenshots; return the exit status."""
    with tempfile.TemporaryDirectory() as folder:
        for language in ("en", "es"):
            print(render(language, Path(folder) / "project"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
