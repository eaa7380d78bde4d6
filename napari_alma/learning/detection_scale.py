"""Estimate the pixel size (µm/px) of a smear image from the cells it shows.

Two rulers, chosen by what the field holds:

- red cells, about 7.5 µm across, found by shape, not colour: stained objects that contain
  no nucleus and touch none, with pale centres filled and rims counted to half their
  plateau density. Their size is the area-weighted mode of the distance-transform
  maxima (inscribed radii), which stays a cell's radius where round cells overlap. Used
  when such objects cover a fair part of the field (peripheral blood, thin marrow areas).
- otherwise (crowded marrow fields) the earlier colour rule for red cells, then round
  nuclei taken as 7.5 µm, measured as local thickness.

Both are estimates. Error against the reference of each data set (median, 90th percentile
of the absolute error) on the PBC, BCCD and SegPC images:
PBC +18 % / 34 % (reference 0.0919 µm/px from neutrophil boxes, itself an estimate;
isolated round red cells there measure 75 px, 0.100 µm/px), BCCD +7 % / 50 %, SegPC
-3 % / 8 %. Known weakness: gaps of glass enclosed by red-cell clumps are filled with the
pale centres, which makes a few crowded fields read 25-36 % too fine.
"""

from __future__ import annotations

import numpy as np

from napari_alma.learning.detection_stain import (
    block_mean,
    nucleus_stain,
    nucleus_threshold,
    optical_density,
)

RED_CELL_DIAMETER_UM = 7.5
ROUND_NUCLEUS_DIAMETER_UM = 7.5

# Percentile of the local thickness over the mask's pixels taken as the diameter.
THICKNESS_PERCENTILE = 75.0

# Ratio between successive disk radii when measuring local thickness (8 % steps).
THICKNESS_STEP = 1.08

# The red-cell ruler is used when red cells cover at least this fraction of the field.
MIN_RED_CELL_FRACTION = 0.15

# Minimum number of objects a ruler needs before its percentile is trusted.
MIN_OBJECTS = 3

# The image is block-averaged to at most this many pixels before measuring.
MAX_PIXELS = 150_000

# Smallest object diameter in (block-averaged) pixels that is trusted as a ruler.
MIN_DIAMETER_PX = 8.0

# The red-cell mask reaches down to this fraction of the red cells' plateau density:
# a blurred edge lies at half the step between glass and cell.
HALF_MAXIMUM = 0.5

# Log-radius histogram of the red-cell mode: grid step, Gaussian bandwidth (about 6 %)
# and the window around the mode averaged for the final value (about 12 %).
MODE_STEP = 0.01
MODE_BANDWIDTH = 0.06
MODE_WINDOW = 0.12

# Plausible range for a light-microscope smear image: 0.02 µm/px (100x with a fine
# camera) to 2 µm/px (a 4x overview).
MPP_RANGE = (0.02, 2.0)


def estimate_mpp(image: np.ndarray) -> float | None:
    """Estimate the pixel size of a smear image from red cells or nuclei.

    Parameters
    ----------
    image : (rows, cols, 3) uint8 ndarray
        RGB image of a Romanowsky-stained smear.

    Returns
    -------
    float or None
        Estimated µm/px, or None when the image shows too few cells to measure.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"Expected an RGB image of shape (rows, cols, 3), got {image.shape}.")

    factor = max(1, int(np.ceil(np.sqrt(image.shape[0] * image.shape[1] / MAX_PIXELS))))
    small = block_mean(image, factor)
    stain = nucleus_stain(small)
    nuclei = stain > nucleus_threshold(stain)
    radii, covered = _anucleate_round_objects(small, nuclei)
    if covered >= MIN_RED_CELL_FRACTION:
        radius = _mode_radius(radii)
        diameter = None if radius is None else 2.0 * radius + 1.0
        ruler = RED_CELL_DIAMETER_UM
    else:
        diameter, ruler = _colour_ruler(small, nuclei)
    if diameter is None:
        return None
    mpp = ruler / (diameter * factor)
    return float(np.clip(mpp, *MPP_RANGE))


def _colour_ruler(small: np.ndarray, nuclei: np.ndarray) -> tuple[float | None, float]:
    """Fallback where few anucleate objects lie free of nuclei (crowded marrow)."""
    red_cells = _red_cell_mask(small, nuclei)
    if red_cells.mean() >= MIN_RED_CELL_FRACTION:
        return _typical_thickness(red_cells), RED_CELL_DIAMETER_UM
    return _typical_thickness(_clean(nuclei)), ROUND_NUCLEUS_DIAMETER_UM


def _anucleate_round_objects(image: np.ndarray, nuclei: np.ndarray) -> tuple[np.ndarray, float]:
    """Find the round stained objects that contain no nucleus and touch none: red cells.

    Colour-blind on purpose (red cells are pink, mauve or grey with the stain batch and
    the white balance). The stained mask is the summed optical density above half its
    plateau, reached by hysteresis from Otsu's threshold, so that a blurred rim counts
    up to its half-maximum, where the true edge lies. Pale centres are filled. The mask
    is cut into one region per distance-transform maximum (a watershed), and regions
    that touch a nucleus (cytoplasm of leukocytes and plasma cells) are dropped.

    Returns
    -------
    radii : (K,) float ndarray
        Inscribed radius of each kept object in pixels (the distance-transform maximum,
        which stays the cell's radius where round cells overlap).
    covered : float
        Fraction of the field the kept objects cover.
    """
    from scipy import ndimage as ndi
    from skimage.feature import peak_local_max
    from skimage.filters import apply_hysteresis_threshold, threshold_otsu
    from skimage.segmentation import watershed

    total = optical_density(image).sum(axis=-1)
    zone = ndi.binary_dilation(nuclei, iterations=2)
    free = total[~zone]
    if free.size == 0 or float(np.ptp(free)) == 0.0:
        return np.zeros(0), 0.0
    high = float(threshold_otsu(free))
    low = min(high, HALF_MAXIMUM * float(np.median(free[free > high])))
    stained = apply_hysteresis_threshold(total, low, high) & ~zone
    mask = ndi.binary_opening(ndi.binary_fill_holes(stained) & ~zone)
    distance = ndi.distance_transform_edt(mask)
    peaks = peak_local_max(
        distance, min_distance=2, threshold_abs=MIN_DIAMETER_PX / 2, exclude_border=False
    )
    if len(peaks) == 0:
        return np.zeros(0), 0.0
    markers = np.zeros(mask.shape, dtype=np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    regions = watershed(-distance, markers, mask=mask)
    touching = np.unique(regions[ndi.binary_dilation(zone, iterations=2) & mask])
    kept = np.isin(np.arange(1, len(peaks) + 1), touching, invert=True)
    covered = float(np.isin(regions, np.flatnonzero(kept) + 1).mean())
    return distance[tuple(peaks[kept].T)], covered


def _mode_radius(radii: np.ndarray) -> float | None:
    """Return the most common radius, by area: the mode of a smoothed log-radius histogram.

    Each radius is weighted by its disk's area, so that the many small maxima along
    ragged edges and junctions do not outvote the cells. The mode is refined as the
    weighted mean of the radii within ``MODE_WINDOW`` (log units) of it.
    """
    if radii.size < MIN_OBJECTS:
        return None
    log_radii = np.log(radii)
    weights = radii**2
    grid = np.arange(log_radii.min(), log_radii.max() + MODE_STEP, MODE_STEP)
    kernel = np.exp(-0.5 * ((grid[:, None] - log_radii[None, :]) / MODE_BANDWIDTH) ** 2)
    mode = grid[np.argmax(kernel @ weights)]
    near = np.abs(log_radii - mode) < MODE_WINDOW
    return float(np.exp(np.average(log_radii[near], weights=weights[near])))


def _clean(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage as ndi

    return ndi.binary_fill_holes(ndi.binary_opening(mask, iterations=2))


def _red_cell_mask(image: np.ndarray, nuclei: np.ndarray) -> np.ndarray:
    """Stained, non-nuclear pixels that are not blue: red cells, with pale centres filled."""
    from scipy import ndimage as ndi
    from skimage.filters import threshold_otsu

    density = optical_density(image)
    total = density.sum(axis=-1)
    if nuclei.all() or float(np.ptp(total[~nuclei])) == 0.0:
        return np.zeros(nuclei.shape, dtype=bool)
    stained = total > threshold_otsu(total[~nuclei])
    # Blue cytoplasm absorbs red light more than blue light; red cells do not.
    not_blue = density[..., 2] >= density[..., 0]
    mask = ndi.binary_fill_holes(stained & not_blue & ~nuclei)
    return ndi.binary_opening(mask, iterations=2)


def _typical_thickness(mask: np.ndarray) -> float | None:
    """Return a high percentile of the local thickness of ``mask`` in pixels.

    The local thickness of a pixel is the diameter of the largest disk inside the mask
    that covers it: the object's diameter for a round object, even where round objects
    overlap. Junctions and blurred rims only lower it, hence a high percentile. Returns
    None when fewer than ``MIN_OBJECTS`` objects are thick enough to measure.
    """
    from scipy import ndimage as ndi

    distance = ndi.distance_transform_edt(mask)
    labels, count = ndi.label(mask)
    radii = np.asarray(ndi.maximum(distance, labels, np.arange(1, count + 1)))
    if np.count_nonzero(2.0 * radii >= MIN_DIAMETER_PX) < MIN_OBJECTS:
        return None

    thickness = np.zeros(mask.shape, dtype=np.float32)
    radius = MIN_DIAMETER_PX / 2.0
    while radius <= radii.max():
        # Opening by a disk of this radius, computed with two distance transforms.
        opened = ndi.distance_transform_edt(distance < radius) <= radius
        thickness[opened & mask] = 2.0 * radius
        radius *= THICKNESS_STEP
    measured = thickness[mask & (thickness > 0)]
    return float(np.percentile(measured, THICKNESS_PERCENTILE))
