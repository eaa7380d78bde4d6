"""The opened slide: lazy pyramid levels, pixel size and the level-to-level-0 geometry."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class SlideError(ValueError):
    """A slide file that cannot be read. The message names the file, the problem and the fix.

    Attributes
    ----------
    path : Path or None
        The file or folder that failed, when known.
    """

    def __init__(self, message: str, path: Path | str | None = None):
        super().__init__(message)
        self.path = Path(path) if path is not None else None


def cannot_open(path: Path | str, problem: str, remedy: str) -> SlideError:
    """Build the standard ``SlideError`` for a file that cannot be opened.

    Parameters
    ----------
    path : Path or str
        The file or folder that failed.
    problem : str
        What is wrong with it, without a final full stop.
    remedy : str
        What the user can do, as one or more full sentences.

    Returns
    -------
    SlideError
        ``"Cannot open PATH: PROBLEM. REMEDY"``, ready to raise.
    """
    return SlideError(f"Cannot open {path}: {problem}. {remedy}", path)


@dataclass
class Slide:
    """A multiscale image opened lazily from a file or an OME-Zarr folder.

    Attributes
    ----------
    path : Path
        The file or folder the slide was opened from.
    levels : list of dask arrays
        Pyramid levels, level 0 (full resolution) first. Each is ``(rows, cols, 3)`` for
        RGB or ``(rows, cols)`` for grey; uint8 in general, other dtypes (16-bit, float)
        kept as stored.
    mpp : float or None
        Micrometres per level-0 pixel read from the file metadata, None when absent or
        outside 0.01-10 µm/px.
    format : str
        ``"jpeg"``, ``"png"``, ``"tiff"``, ``"ome-tiff"``, ``"svs"``, ``"ome-zarr"`` or
        another vendor TIFF flavour that tifffile recognises (``"ndpi"``, ``"scn"``, ...).
    metadata : dict
        Metadata fields without personal or site data (no dates, names, file names,
        barcodes, free-text descriptions).
    private_metadata : dict
        The fields left out of ``metadata``, for ``info --show-private``.
    """

    path: Path
    levels: list
    mpp: float | None
    format: str
    metadata: dict = field(default_factory=dict)
    private_metadata: dict = field(default_factory=dict, repr=False)
    resources: list = field(default_factory=list, repr=False, compare=False)
    _display_max: float | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def shape(self) -> tuple[int, int]:
        """Level-0 size as (rows, cols)."""
        rows, cols = self.levels[0].shape[:2]
        return int(rows), int(cols)

    @property
    def rgb(self) -> bool:
        """Whether the levels carry a trailing RGB axis."""
        return self.levels[0].ndim == 3

    @property
    def downsamples(self) -> list[float]:
        """Per-level downsample factor: level-0 rows divided by the level's rows."""
        return [self.shape[0] / int(level.shape[0]) for level in self.levels]

    def level_scale_translate(self, level: int) -> tuple[np.ndarray, np.ndarray]:
        """Return the transform that places a level's pixels on the level-0 grid.

        A level pixel at index ``i`` has its centre at ``i * scale + translate`` in level-0
        pixels. With a downsample ``d`` this makes the centre of a level pixel the centre
        of the ``d`` level-0 pixels it summarises: ``scale = d`` and
        ``translate = (d - 1) / 2``.

        Parameters
        ----------
        level : int
            Index into ``levels``.

        Returns
        -------
        scale : (2,) float ndarray
            Downsample per axis (rows, cols), exact from the level shapes.
        translate : (2,) float ndarray
            Offset per axis (rows, cols) in level-0 pixels.
        """
        scale = self._level_downsample(level)
        return scale, (scale - 1.0) / 2.0

    def read_region(self, r0: float, c0: float, r1: float, c1: float, level: int = 0) -> np.ndarray:
        """Read the pixels of a level-0 rectangle from one level, as RGB uint8.

        The rectangle covers rows ``r0 <= r < r1`` and columns ``c0 <= c < c1`` in level-0
        pixels. On a coarser level it maps to level rows ``floor(r0 / d)`` to
        ``ceil(r1 / d)``, so the result covers at least the rectangle. Parts outside the
        image are clipped away, so a rectangle past the border returns fewer pixels (or
        none).

        Parameters
        ----------
        r0, c0, r1, c1 : float
            The rectangle in level-0 pixels, start inclusive, stop exclusive.
        level : int, optional
            Index into ``levels``; 0 (full resolution) by default.

        Returns
        -------
        (rows, cols, 3) uint8 ndarray
            Grey images are repeated over three channels. Other dtypes are scaled
            linearly so that the maximum of the coarsest level becomes 255.

        Raises
        ------
        ValueError
            When ``r1 < r0`` or ``c1 < c0``, or ``level`` does not exist.
        """
        data = self._level(level)
        scale = self._level_downsample(level)
        rows = _level_slice(r0, r1, scale[0], data.shape[0])
        cols = _level_slice(c0, c1, scale[1], data.shape[1])
        region = np.asarray(data[rows, cols])
        return self._to_rgb8(region)

    def close(self) -> None:
        """Close the open file handles; the levels cannot be read afterwards."""
        for resource in self.resources:
            resource.close()
        self.resources.clear()

    def __enter__(self) -> Slide:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _level(self, level: int):
        if not 0 <= level < len(self.levels):
            raise ValueError(
                f"Level {level} does not exist in {self.path}: it has levels 0 to "
                f"{len(self.levels) - 1}."
            )
        return self.levels[level]

    def _level_downsample(self, level: int) -> np.ndarray:
        rows, cols = self._level(level).shape[:2]
        return np.array([self.shape[0] / int(rows), self.shape[1] / int(cols)])

    def _to_rgb8(self, region: np.ndarray) -> np.ndarray:
        if region.dtype != np.uint8:
            region = _scale_to_uint8(region, self._intensity_max())
        if region.ndim == 2:
            region = np.repeat(region[:, :, np.newaxis], 3, axis=2)
        return region

    def _intensity_max(self) -> float:
        # NOTE: the maximum of the coarsest level scales every region, so that all regions
        # of a slide get the same scaling. That level is read once, on the first call.
        if self._display_max is None:
            maximum = float(np.asarray(self.levels[-1]).max())
            self._display_max = maximum if maximum > 0 else 1.0
        return self._display_max


def _level_slice(start: float, stop: float, downsample: float, size: int) -> slice:
    if stop < start:
        raise ValueError(
            f"Invalid region: the stop {stop} is before the start {start}. Pass the "
            "rectangle as (r0, c0, r1, c1) with r0 <= r1 and c0 <= c1."
        )
    first = min(max(math.floor(start / downsample), 0), size)
    last = min(max(math.ceil(stop / downsample), first), size)
    return slice(first, last)


def _scale_to_uint8(region: np.ndarray, maximum: float) -> np.ndarray:
    scaled = region.astype(np.float32) * np.float32(255.0 / maximum)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
