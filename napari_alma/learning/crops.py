"""Square cell crops of a fixed physical size, cut from a large image one window at a time."""

from __future__ import annotations

import logging
import math

import numpy as np

logger = logging.getLogger(__name__)

WHITE = np.array([255, 255, 255], dtype=np.uint8)


def extract_crops(
    image,
    positions,
    mpp: float,
    crop_um: float,
    crop_px: int,
    fill: np.ndarray | None = None,
) -> np.ndarray:
    """Cut a square of ``crop_um`` micrometres around each cell and resample it to ``crop_px``.

    Parameters
    ----------
    image : (rows, cols, 3) uint8 array-like
        A numpy or dask array (or anything sliceable that ``np.asarray`` accepts). Only the
        window around each cell is read, never the whole image.
    positions : (N, 2) float array-like
        Cell centres as (row, col) in level-0 pixels, pixel centres at integer values.
    mpp : float
        Pixel size of ``image`` in micrometres per pixel.
    crop_um : float
        Side of the square crop in micrometres.
    crop_px : int
        Side of the returned crops in pixels.
    fill : (3,) uint8 array, optional
        Colour for the parts of a square that lie outside the image. Default: the median
        colour of the window's pixels inside the image, or white when none is inside.

    Returns
    -------
    (N, crop_px, crop_px, 3) uint8 ndarray
        The crops; the cell centre maps to the centre of each crop.

    Raises
    ------
    ValueError
        When ``mpp``, ``crop_um`` or ``crop_px`` is not positive, or the shapes are wrong.
    """
    positions = _check_inputs(image, positions, mpp, crop_um, crop_px)
    side_px = crop_um / mpp
    crops = np.empty((len(positions), crop_px, crop_px, 3), dtype=np.uint8)
    for index, (row, col) in enumerate(positions):
        crops[index] = _extract_one(image, row, col, side_px, crop_px, fill)
    return crops


def _check_inputs(image, positions, mpp, crop_um, crop_px) -> np.ndarray:
    for name, value in (("mpp", mpp), ("crop_um", crop_um), ("crop_px", crop_px)):
        if not value or value <= 0:
            raise ValueError(f"{name} must be a positive number; got {value!r}.")
    if len(image.shape) != 3 or image.shape[2] != 3:
        raise ValueError(
            f"Expected an RGB image of shape (rows, cols, 3); got shape {tuple(image.shape)}."
        )
    positions = np.asarray(positions, dtype=float).reshape(-1, 2)
    return positions


def _extract_one(image, row, col, side_px, crop_px, fill) -> np.ndarray:
    """Return one (crop_px, crop_px, 3) uint8 crop centred on (row, col)."""
    from scipy import ndimage

    scale = side_px / crop_px
    # Output pixel i samples the input at row - side/2 + (i + 0.5) * scale, so the crop
    # centre (between the two middle pixels for even crop_px) falls on (row, col).
    start_row = row - side_px / 2 + 0.5 * scale
    start_col = col - side_px / 2 + 0.5 * scale
    margin = 2 + math.ceil(scale)
    r0, r1 = math.floor(start_row) - margin, math.ceil(start_row + side_px) + margin
    c0, c1 = math.floor(start_col) - margin, math.ceil(start_col + side_px) + margin
    window = _read_window(image, r0, r1, c0, c1, fill)

    window = window.astype(np.float32)
    if scale > 1:
        # Anti-alias before shrinking: a Gaussian of sigma ~ (scale - 1) / 2, as skimage does.
        sigma = max((scale - 1) / 2, 0)
        window = ndimage.gaussian_filter(window, sigma=(sigma, sigma, 0), mode="nearest")
    grid = np.arange(crop_px) * scale
    rows = start_row - r0 + grid
    cols = start_col - c0 + grid
    out = np.empty((crop_px, crop_px, 3), dtype=np.float32)
    coords = np.meshgrid(rows, cols, indexing="ij")
    for channel in range(3):
        out[..., channel] = ndimage.map_coordinates(
            window[..., channel], coords, order=1, mode="nearest"
        )
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _read_window(image, r0, r1, c0, c1, fill):
    """Read image[r0:r1, c0:c1] with the parts outside the image set to the fill colour."""
    rows, cols = image.shape[:2]
    if r0 >= 0 and c0 >= 0 and r1 <= rows and c1 <= cols:
        return np.asarray(image[r0:r1, c0:c1])
    window = np.empty((r1 - r0, c1 - c0, 3), dtype=np.uint8)
    inner_r0, inner_r1 = max(r0, 0), min(r1, rows)
    inner_c0, inner_c1 = max(c0, 0), min(c1, cols)
    inside = None
    if inner_r0 < inner_r1 and inner_c0 < inner_c1:
        inside = np.asarray(image[inner_r0:inner_r1, inner_c0:inner_c1])
    colour = _fill_colour(inside, fill)
    window[:] = colour
    if inside is not None:
        window[inner_r0 - r0 : inner_r1 - r0, inner_c0 - c0 : inner_c1 - c0] = inside
    return window


def _fill_colour(inside: np.ndarray | None, fill) -> np.ndarray:
    if fill is not None:
        return np.asarray(fill, dtype=np.uint8).reshape(3)
    if inside is None or inside.size == 0:
        return WHITE
    return np.median(inside.reshape(-1, 3), axis=0).astype(np.uint8)
