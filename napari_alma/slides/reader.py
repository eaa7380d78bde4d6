"""Open slide files and OME-Zarr folders as lazy multiscale images.

``open_slide`` picks the reader from the file's first bytes (TIFF, JPEG, PNG) or from
the Zarr metadata of a folder, then adds coarser levels when the file stores too few
for napari to show an overview. Nothing at full resolution is read while opening.
"""

from __future__ import annotations

import logging
from pathlib import Path

from napari_alma.slides.fingerprint import fingerprint
from napari_alma.slides.omezarr import is_zarr_store, open_ome_zarr
from napari_alma.slides.pyramid import add_overview_levels
from napari_alma.slides.rasters import open_raster
from napari_alma.slides.slide import Slide, SlideError, cannot_open
from napari_alma.slides.tiff import open_tiff

__all__ = ["SUFFIXES", "Slide", "SlideError", "fingerprint", "open_slide", "sniff_format"]

logger = logging.getLogger(__name__)

#: File name endings this package reads, lower case. OME-Zarr folders are found by
#: their metadata, whatever their name.
SUFFIXES = (".tif", ".tiff", ".svs", ".ndpi", ".scn", ".bif", ".btf", ".tf8", ".jpg", ".jpeg",
            ".png")

_MAGIC_BYTES = (
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"II+\x00", "tiff"),  # BigTIFF
    (b"MM\x00+", "tiff"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
)


def open_slide(path: Path | str, overview_levels: bool = True) -> Slide:
    """Open a slide file or OME-Zarr folder lazily.

    Parameters
    ----------
    path : Path or str
        A JPEG, PNG or TIFF file (plain, tiled pyramidal, OME-TIFF, Aperio SVS and the
        other flavours tifffile reads), or an OME-Zarr folder (NGFF 0.4 on Zarr v2,
        NGFF 0.5 on Zarr v3).
    overview_levels : bool, optional
        Append computed overview levels when the file stores too few (the default).
        False returns the stored levels only.

    Returns
    -------
    Slide
        Levels full resolution first. When the coarsest stored level is larger than
        4096 pixels a side, coarser levels computed on demand are appended. Call
        ``Slide.close`` (or use it as a context manager) to release a TIFF file handle.

    Raises
    ------
    SlideError
        When the path is missing, is a folder but not a Zarr store, is empty, is not a
        TIFF, JPEG or PNG file, is truncated, or contains an image without pixels. The
        message names the file, the problem and what to do.
    """
    path = Path(path)
    slide = _open_stored_levels(path)
    _check_has_pixels(slide)
    if overview_levels:
        slide.levels = add_overview_levels(slide.levels)
    logger.debug(
        "Opened %s as %s: %d levels, level 0 %s, %s µm/px",
        path,
        slide.format,
        len(slide.levels),
        slide.shape,
        slide.mpp,
    )
    return slide


def sniff_format(path: Path) -> str | None:
    """Return ``"tiff"``, ``"jpeg"`` or ``"png"`` from a file's first bytes, else None.

    Never raises: an unreadable file gives None.
    """
    try:
        with open(path, "rb") as file:
            head = file.read(8)
    except OSError:
        return None
    for magic, file_format in _MAGIC_BYTES:
        if head.startswith(magic):
            return file_format
    return None


def _open_stored_levels(path: Path) -> Slide:
    if path.is_dir():
        if is_zarr_store(path):
            return open_ome_zarr(path)
        raise cannot_open(
            path,
            "it is a folder but not a Zarr store (it has no zarr.json, .zgroup or .zattrs)",
            "Pass an image file or an OME-Zarr folder.",
        )
    if not path.is_file():
        raise cannot_open(path, "the file does not exist", "Check the path and the file name.")
    if path.stat().st_size == 0:
        raise cannot_open(
            path, "the file is empty (0 bytes)", "Copy the file again from its source."
        )
    _check_readable(path)
    file_format = sniff_format(path)
    if file_format == "tiff":
        return open_tiff(path)
    if file_format is not None:
        return open_raster(path, file_format)
    raise cannot_open(path, _foreign_problem(path), "Pass a TIFF, SVS, JPEG or PNG file.")


def _check_readable(path: Path) -> None:
    try:
        with open(path, "rb"):
            pass
    except PermissionError as err:
        raise cannot_open(
            path,
            "permission denied: your user account may not read the file",
            "Ask the owner of the file for read access, or copy it to a folder of yours.",
        ) from err


def _foreign_problem(path: Path) -> str:
    with open(path, "rb") as file:
        head = file.read(8)
    return f"it is not a TIFF, JPEG or PNG file (its first bytes are {head!r})"


def _check_has_pixels(slide: Slide) -> None:
    for index, level in enumerate(slide.levels):
        if 0 in level.shape:
            slide.close()
            raise cannot_open(
                slide.path,
                f"level {index} of the image has no pixels (shape {tuple(level.shape)})",
                "Export the image again from its source.",
            )
