"""Sample images bundled with napari-alma, offered in napari's File > Open Sample menu.

Sources and licences: ``ATTRIBUTION.md`` beside this file.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def sample_path(name: str) -> Path:
    """Return the path of a bundled sample image."""
    return Path(str(resources.files("napari_alma.samples") / name))


def pbc_mosaic() -> list:
    """Return the PBC mosaic (20 real blood cells, CC BY 4.0) as napari layer data."""
    from napari_alma.slides.napari_reader import read_slides

    return read_slides(str(sample_path("pbc_mosaic.tif")))


def bccd_field() -> list:
    """Return the BCCD peripheral-blood smear field (MIT) as napari layer data."""
    from napari_alma.slides.napari_reader import read_slides

    return read_slides(str(sample_path("bccd_field.jpg")))
