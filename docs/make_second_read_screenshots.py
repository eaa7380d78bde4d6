"""Write the user guide's second-read screenshots: a blind read and the agreement dock.

Run from the repository root under a display (``xvfb-run -a python
docs/make_second_read_screenshots.py``). The image is the package's PBC mosaic sample
of 20 real cells (CC BY 4.0, sources in ``napari_alma/samples/ATTRIBUTION.md``). The
shipped model detects and classifies its cells. The two readers' labels are made up for the
illustration: the first reader keeps the model's class of every cell, the second changes
every third cell.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ALTERNATIVES = ("BLA", "LYT", "MON")


def label_two_readers(project, slide_id: str) -> None:
    """Store the first reader's and the second reader's made-up labels."""
    table = project.cell_table(slide_id)
    for index, cell in enumerate(table.itertuples()):
        code = cell.predicted_class
        project.label_cells(slide_id, [cell.cell_id], code, reader="ana")
        if index % 3 == 0:
            code = next(alt for alt in ALTERNATIVES if alt != code)
        project.label_cells(slide_id, [cell.cell_id], code, reader="bea")


def main() -> int:
    """Write ``second-read-blind.png`` and ``agreement-dock.png`` into ``docs/``."""
    import napari

    from napari_alma.demo import sample_path
    from napari_alma.widgets.launch import open_in_viewer

    field = sample_path()
    folder = Path(tempfile.mkdtemp()) / "project"

    viewer = napari.Viewer(show=True)
    session = open_in_viewer(viewer, field, folder, reader="ana")
    label_two_readers(session.project, session.slide_id)
    session.refresh()
    session.project.close()
    viewer.close()

    viewer = napari.Viewer(show=True)
    session = open_in_viewer(viewer, field, folder, reader="carla", predict=False)
    viewer.window._qt_window.resize(1500, 900)
    dock = session.docks["agreement"]
    dock.reader_a.value, dock.reader_b.value = "ana", "bea"
    dock.update_agreement()
    dock.go_to(0)
    dock.native.parent().raise_()
    napari.qt.get_qapp().processEvents()
    viewer.screenshot(str(DOCS / "agreement-dock.png"), canvas_only=False)
    session.project.close()
    viewer.close()

    viewer = napari.Viewer(show=True)
    session = open_in_viewer(viewer, field, folder, reader="dora", predict=False, blind=True)
    viewer.window._qt_window.resize(1500, 900)
    napari.qt.get_qapp().processEvents()
    viewer.screenshot(str(DOCS / "second-read-blind.png"), canvas_only=False)
    session.project.close()
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
