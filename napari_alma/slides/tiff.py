"""TIFF slides through tifffile: plain fields, tiled pyramids, OME-TIFF and Aperio SVS."""

from __future__ import annotations

import logging
import struct
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np

from napari_alma.slides.axes import to_image_layout
from napari_alma.slides.metadata import length_in_micrometres, plausible_mpp, split_private
from napari_alma.slides.slide import Slide, SlideError, cannot_open

logger = logging.getLogger(__name__)

# tifffile flags that name a vendor flavour, checked in this order. No flag: plain TIFF.
_FORMAT_FLAGS = (
    ("svs", "svs"),
    ("ome", "ome-tiff"),
    ("ndpi", "ndpi"),
    ("scn", "scn"),
    ("bif", "bif"),
    ("philips", "philips-tiff"),
)
_RESOLUTION_UNIT_UM = {2: 25400.0, 3: 10000.0}  # TIFF ResolutionUnit: 2 inch, 3 centimetre
_NDPI_MAGNIFICATION = 65421
_NDPI_Z_OFFSET = 65422
_BASELINE_TAGS = ("Software", "Make", "Model", "DateTime", "Artist", "HostComputer")
_REMEDY_DAMAGED = "Copy the file again from the scanner or its source."


def open_tiff(path: Path) -> Slide:
    """Open a TIFF file as a lazy slide, one dask array per stored pyramid level.

    Pyramid levels are taken from tifffile's ``series[0].levels`` (SubIFDs, or reduced
    pages as in SVS), or else from the following series when they are smaller copies
    of the first one. Only tags are read here, and the pixel data are read by chunk
    (tile or strip) when a level is indexed.

    Parameters
    ----------
    path : Path
        An existing, non-empty file that starts with a TIFF header.

    Returns
    -------
    Slide
        The file handle stays open in ``Slide.resources`` until ``Slide.close``.

    Raises
    ------
    SlideError
        When tifffile cannot parse the file, or tile data lie past the end of the file.
    """
    import tifffile

    try:
        tif = tifffile.TiffFile(path)
    except (tifffile.TiffFileError, ValueError, OSError, struct.error, IndexError) as err:
        raise cannot_open(path, f"it is not a readable TIFF file ({err})", _REMEDY_DAMAGED) from err
    try:
        return _slide_from_tiff(path, tif)
    except BaseException:
        tif.close()
        raise


def _slide_from_tiff(path: Path, tif) -> Slide:
    if not tif.series:
        raise cannot_open(path, "the TIFF file contains no image", _REMEDY_DAMAGED)
    sources = _level_sources(tif)
    _check_complete(path, [tif.series[index].levels[level] for index, level in sources])
    stored = _stored_arrays(tif, sources)
    version = path.stat().st_mtime_ns
    levels = [
        _level_array(array, path, tif.series[index].levels[level], number, version)
        for number, (array, (index, level)) in enumerate(zip(stored, sources))
    ]
    file_format = _tiff_format(tif)
    page = tif.series[0].pages[0]
    mpp = plausible_mpp(_tiff_mpp(tif, page, file_format), f"{path} metadata")
    public, private = split_private(_tiff_fields(tif, page, file_format))
    associated = _associated_images(tif, {index for index, _ in sources})
    if associated:
        # Label and macro photographs can show the patient's name or barcode.
        private["associated_images"] = associated
    return Slide(path, levels, mpp, file_format, public, private, resources=[tif])


def _associated_images(tif, level_series: set[int]) -> dict:
    """Return {series name: shape} of the series that are not pyramid levels."""
    return {
        series.name or f"series {index}": list(series.shape)
        for index, series in enumerate(tif.series)
        if index not in level_series
    }


def _level_sources(tif) -> list[tuple[int, int]]:
    """Return (series index, level index) per pyramid level, full resolution first."""
    main = tif.series[0]
    if len(main.levels) > 1:
        return [(0, level) for level in range(_stored_level_count(main))]
    sources = [(0, 0)]
    if _tiff_format(tif) != "tiff":
        return sources  # vendor files keep labels and thumbnails in the other series
    for index in range(1, len(tif.series)):
        if not _is_reduced_copy(tif.series[sources[-1][0]], tif.series[index]):
            break
        sources.append((index, 0))
    return sources


def _stored_level_count(series) -> int:
    """Return how many of a series' levels are pyramid levels.

    NDPI macro and map pages, which Hamamatsu marks with a negative magnification (tag
    65421), end the pyramid even where tifffile lists them as levels.
    """
    for index, level in enumerate(series.levels):
        magnification = level.keyframe.tags.valueof(_NDPI_MAGNIFICATION)
        if magnification is not None and magnification < 0:
            return max(index, 1)
    return len(series.levels)


def _is_reduced_copy(previous, candidate) -> bool:
    # tifffile groups levels only for sampling factors 2, 3 and 4, so other pyramids come
    # back as separate series. A series counts as the next level when it has the same axes
    # and dtype and shrinks both sides by the same factor, to within one pixel. The factor
    # must be a whole number unless the page is marked as a reduced image (SubIFD or
    # NewSubfileType 1), because an unmarked page of another size may be a label image.
    if candidate.axes != previous.axes or candidate.dtype != previous.dtype:
        return False
    sides = [previous.axes.index("Y"), previous.axes.index("X")]
    factor = previous.shape[sides[0]] / max(candidate.shape[sides[0]], 1)
    marked = candidate.keyframe.is_reduced or candidate.keyframe.is_subifd
    if not marked:
        factor = round(factor)
    if factor < (1.1 if marked else 2):
        return False
    return all(abs(previous.shape[axis] / factor - candidate.shape[axis]) <= 1 for axis in sides)


def _check_complete(path: Path, level_series: list) -> None:
    size = path.stat().st_size
    for series in level_series:
        for page in series.pages:
            if page is None or not page.dataoffsets:
                continue
            offsets = np.asarray(page.dataoffsets, dtype=np.int64)
            ends = offsets + np.asarray(page.databytecounts, dtype=np.int64)
            last = int(np.argmax(ends))
            if ends[last] > size:
                raise cannot_open(
                    path,
                    f"the file is truncated: chunk {last} of page {page.index} expects "
                    f"{int(page.databytecounts[last])} bytes of image data at offset "
                    f"{int(offsets[last])}, but the file ends at byte {size}",
                    _REMEDY_DAMAGED,
                )


def _stored_arrays(tif, sources: list[tuple[int, int]]) -> list:
    """Open the zarr array of each level; one multiscale store serves a series' levels."""
    import zarr

    if len(sources) > 1 and all(index == 0 for index, _ in sources):
        group = zarr.open_group(tif.aszarr(series=0), mode="r")
        return [group[str(level)] for _, level in sources]
    return [
        zarr.open_array(tif.aszarr(series=index, level=level), mode="r")
        for index, level in sources
    ]


def _level_array(stored, path: Path, level_series, number: int, version: int):
    import dask.array as da

    axes = level_series.axes
    checked = _CheckedTiles(stored, path, number, axes)
    array = da.from_array(
        checked,
        chunks=stored.chunks,
        asarray=False,
        lock=False,
        meta=np.empty((0,) * stored.ndim, dtype=stored.dtype),
        name=f"tiff-{da.core.tokenize(str(path), version, number)}",
    )
    stack_axis = next((axis for axis in "ZI" if axis in axes), None)
    if stack_axis is not None:
        array, axes = _focal_plane(array, axes, stack_axis, level_series)
    return to_image_layout(array, axes, path)


def _focal_plane(array, axes: str, stack_axis: str, level_series):
    """Keep the nominal focal plane of a stack: NDPI's ZOffset 0, else the first plane.

    Hamamatsu stores a stack's planes in order of their focus offset (tag 65422, in nm), so
    the plane the scanner focused on can sit in the middle. tifffile names the stack axis
    Z on the first level and I (image sequence) on the reduced ones.
    """
    index = axes.index(stack_axis)
    # TiffFrame pages carry no tags, so a stack read through frames keeps its first plane.
    offsets = [page.tags.valueof(_NDPI_Z_OFFSET) if hasattr(page, "tags") else None
               for page in level_series.pages]
    plane = offsets.index(0) if 0 in offsets and len(offsets) == array.shape[index] else 0
    array = array[(slice(None),) * index + (plane,)]
    return array, axes.replace(stack_axis, "")


class _CheckedTiles:
    """Array-like view of a stored level that names the file when a tile cannot be decoded.

    tifffile decodes tiles only when a region is read, so damaged tile data (a corrupt
    JPEG tile) surfaces long after opening, inside napari's slicing thread. The error then
    names the file, the level and the pixel rows and columns.
    """

    def __init__(self, array, path: Path, level: int, axes: str):
        self.array = array
        self.path = path
        self.level = level
        self.axes = axes.upper()
        self.shape = array.shape
        self.dtype = array.dtype
        self.ndim = array.ndim

    def __getitem__(self, index):
        try:
            return self.array[index]
        except (RuntimeError, ValueError, OSError, struct.error) as err:
            raise SlideError(
                f"Cannot read {self.path}: the image data of level {self.level} in "
                f"{self._region(index)} are damaged ({type(err).__name__}: {err}). "
                f"{_REMEDY_DAMAGED}",
                self.path,
            ) from err

    def _region(self, index) -> str:
        index = index if isinstance(index, tuple) else (index,)
        ranges = {}
        for axis, item in zip(self.axes, index):
            if isinstance(item, slice) and axis in "YX":
                stop = self.shape[self.axes.index(axis)] if item.stop is None else item.stop
                ranges[axis] = f"{item.start or 0}-{stop - 1}"
        return f"rows {ranges.get('Y', '?')}, columns {ranges.get('X', '?')}"


def _tiff_format(tif) -> str:
    for flag, name in _FORMAT_FLAGS:
        if getattr(tif, f"is_{flag}", False):
            return name
    return "tiff"


def _tiff_mpp(tif, page, file_format: str) -> float | None:
    if file_format == "ome-tiff":
        return _ome_mpp(tif.ome_metadata)
    if file_format == "svs":
        mpp = _svs_fields(page.description).get("MPP")
        return float(mpp) if isinstance(mpp, (int, float)) else None
    if file_format == "philips-tiff":
        return _philips_mpp(tif.philips_metadata) or _resolution_mpp(page)
    return _resolution_mpp(page)


def _philips_mpp(xml: str | None) -> float | None:
    """Return µm/px from the first DICOM_PIXEL_SPACING (row and column spacing in mm)."""
    if not xml:
        return None
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as err:
        logger.warning("Ignoring unreadable Philips XML: %s", err)
        return None
    for element in root.iter("Attribute"):
        if element.attrib.get("Name") == "DICOM_PIXEL_SPACING" and element.text:
            values = element.text.replace('"', " ").split()
            try:
                return float(values[-1]) * 1000.0
            except (IndexError, ValueError):
                return None
    return None


def _resolution_mpp(page) -> float | None:
    tags = page.tags
    if "XResolution" not in tags:
        return None
    numerator, denominator = tags["XResolution"].value
    unit = int(tags["ResolutionUnit"].value) if "ResolutionUnit" in tags else 2
    unit_um = _RESOLUTION_UNIT_UM.get(unit)
    if unit_um is None or numerator <= 0 or denominator <= 0:
        return None
    return unit_um * denominator / numerator


def _ome_mpp(ome_xml: str | None) -> float | None:
    if not ome_xml:
        return None
    try:
        root = ElementTree.fromstring(ome_xml)
    except ElementTree.ParseError as err:
        logger.warning("Ignoring unreadable OME-XML: %s", err)
        return None
    for element in root.iter():
        if element.tag.endswith("}Pixels") and "PhysicalSizeX" in element.attrib:
            unit = element.attrib.get("PhysicalSizeXUnit", "µm")
            return length_in_micrometres(float(element.attrib["PhysicalSizeX"]), unit)
    return None


def _svs_fields(description: str) -> dict:
    """Parse an Aperio ImageDescription: a header, then ``|key = value`` fields."""
    parts = description.split("|")
    fields = {"Header": parts[0].strip()}
    for part in parts[1:]:
        key, separator, value = part.partition("=")
        if separator:
            fields[key.strip()] = _number_or_text(value.strip())
    return fields


def _number_or_text(value: str):
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


def _tiff_fields(tif, page, file_format: str) -> dict:
    fields = {
        "compression": page.compression.name,
        "photometric": page.photometric.name,
        "dtype": str(page.dtype),
        "axes": tif.series[0].axes,
    }
    if page.is_tiled:
        fields["tile_shape"] = [int(page.tilelength), int(page.tilewidth)]
    for name in _BASELINE_TAGS:
        if name in page.tags:
            fields[name] = str(page.tags[name].value)
    if file_format == "svs":
        fields.update(_svs_fields(page.description))
    elif page.description:
        fields["ImageDescription"] = page.description
    return fields
