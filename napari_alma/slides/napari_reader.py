"""npe2 reader contribution: slides and OME-Zarr folders as multiscale image layers.

This module does not import napari. It returns plain layer-data tuples.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from napari_alma.core.i18n import tr
from napari_alma.slides.omezarr import has_multiscales
from napari_alma.slides.reader import SUFFIXES, fingerprint, open_slide, sniff_format
from napari_alma.slides.slide import Slide, SlideError

logger = logging.getLogger(__name__)

LayerData = tuple[object, dict, str]

# Compound endings stripped whole from layer names.
_COMPOUND_SUFFIXES = (".ome.tiff", ".ome.tif", ".ome.zarr", ".ome.btf")


def napari_get_reader(path: str | Sequence[str]) -> Callable | None:
    """Return ``read_slides`` when every path is a slide this package reads, else None.

    The check is cheap and never raises: file name ending plus first bytes for files,
    NGFF metadata at the root for folders.

    Parameters
    ----------
    path : str or sequence of str
        What napari was asked to open.

    Returns
    -------
    callable or None
        ``read_slides``, or None so that napari tries other readers.
    """
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    if not paths or not all(_is_supported(item) for item in paths):
        return None
    return read_slides


def read_slides(path: str | Sequence[str]) -> list[LayerData]:
    """Open each slide and return one image layer-data tuple per slide.

    Parameters
    ----------
    path : str or sequence of str
        Paths that ``napari_get_reader`` accepted.

    Returns
    -------
    list of (data, kwargs, "image")
        ``data`` is the list of dask levels for a multiscale slide, else the single level.
        ``kwargs`` carries ``name``, ``multiscale``, ``rgb``, ``scale`` (µm/px, when
        known), ``contrast_limits`` for uint8 and
        ``metadata["napari_alma"] = {"path", "mpp", "format", "fingerprint"}``.

    Raises
    ------
    SlideError
        When a file passes the cheap check but cannot be read (truncated, damaged). The
        message is in the user's language (``ALMA_LANG`` or the system locale) around
        the English technical detail, which names the file, the problem and the fix.
    """
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    try:
        return [layer_data(open_slide(item)) for item in paths]
    except SlideError as err:
        # napari shows the message of a reader's exception in its notification.
        raise SlideError(tr("slide_cannot_open", detail=str(err)),
                         err.path) from err


def layer_data(slide: Slide) -> LayerData:
    """Build napari's image layer-data tuple for an opened slide."""
    multiscale = len(slide.levels) > 1
    kwargs = {
        "name": display_name(slide.path),
        "multiscale": multiscale,
        "rgb": slide.rgb,
        "metadata": {
            "napari_alma": {
                "path": str(slide.path),
                "mpp": slide.mpp,
                "format": slide.format,
                "fingerprint": fingerprint(slide.path),
            }
        },
    }
    if slide.mpp is not None:
        kwargs["scale"] = (slide.mpp, slide.mpp)
    if slide.levels[0].dtype == "uint8":
        kwargs["contrast_limits"] = (0, 255)
    # A one-element list would be read by napari as an image with an extra axis.
    data = slide.levels if multiscale else slide.levels[0]
    return data, kwargs, "image"


def display_name(path: Path) -> str:
    """Return the layer name: the file or folder name without its format ending."""
    name = path.name
    for suffix in _COMPOUND_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem if path.suffix else name


def _is_supported(item) -> bool:
    try:
        path = Path(item)
        if path.is_dir():
            return has_multiscales(path)
        return path.suffix.lower() in SUFFIXES and sniff_format(path) is not None
    except (OSError, TypeError, ValueError) as err:
        # TypeError: not a path at all; ValueError: a path with a NUL byte.
        logger.debug("Not reading %r: %s", item, err)
        return False
