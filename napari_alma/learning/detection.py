"""Detect nucleated cells on Romanowsky-stained blood and bone-marrow smears.

Stain-aware image processing, no learned model: a nucleus-stain map (see
:mod:`napari_alma.learning.detection_stain`), a threshold, size filters in µm², merging of
the nuclear lobes of one cell and a watershed split of touching round nuclei. Red cells
and platelets are not detected. All sizes come from cytology in micrometres and are
converted with the image's µm/px, estimated from the image when unknown.

The function is pure (one RGB array in, detections out), so a caller may run it per tile.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from napari_alma.learning.detection_scale import estimate_mpp
from napari_alma.learning.detection_stain import (
    block_mean,
    nucleus_stain,
    nucleus_threshold,
    optical_density,
)

__all__ = ["Detections", "detect_cells", "estimate_mpp"]

logger = logging.getLogger(__name__)

# Pixel size at which the masks are processed. A platelet (2-3 µm) still spans 8 pixels
# and a nucleus (5-10 µm) 20-40, while a 2040 x 1536 field at 0.04 µm/px shrinks to
# about 340 x 256 pixels (0.1-0.3 s per SegPC field on 2 AMD EPYC cores, measured with
# ``python -m benchmarks detection``).
WORK_MPP_UM = 0.25

# Specks smaller than this radius (stain precipitate, JPEG noise) are opened away.
NOISE_RADIUS_UM = 0.4

# Nuclear lobes of one segmented neutrophil or eosinophil lie within about 1-2 µm of each
# other, joined by thin filaments that stain faintly. A closing of this radius bridges
# gaps up to twice the radius.
MERGE_RADIUS_UM = 1.0

# Pale spots inside a nucleus (nucleoli, clear chromatin) smaller than this are filled.
MAX_HOLE_AREA_UM2 = 10.0

# Smallest nucleus kept, after lobes are merged. An orthochromatic erythroblast's
# nucleus is about 4-5 µm across (12-20 µm²) and a platelet 2-3 µm (3-7 µm²).
MIN_NUCLEUS_AREA_UM2 = 12.0

# A watershed splits a merged region only between round cores at least this radius, so
# touching plasma-cell or lymphocyte nuclei (radius 3-5 µm) are split, while the lobes of
# one neutrophil (radius 1-2 µm) stay one cell.
# Eosinophils with two large round lobes (radius near 3 µm, as on BCCD) also pass this
# test, and so do lobes on an image whose µm/px is overestimated. ``_is_granulocyte``
# keeps those regions whole.
# NOTE: tight clusters of small touching nuclei (erythroblast islands) whose distance
# transform peaks only once are still kept as one cell.
CORE_RADIUS_UM = 2.5

# A region with several cores is kept as one lobed granulocyte nucleus when it fits in one
# cell: an eosinophil is 12-17 µm across and its nucleus lies inside it.
# NOTE: with an estimated µm/px that is 20 % or more too large (PBC, BCCD), eosinophil
# nuclei measure over this span and are still split. Lobes that the mask closing leaves
# apart (gap over 2 µm) are never merged either.
MAX_LOBED_NUCLEUS_SPAN_UM = 17.0

# Width of the cytoplasm ring read around a nucleus region.
CYTOPLASM_RING_UM = 1.5

# Smallest distance between the centres of two split nuclei.
CORE_SEPARATION_UM = 4.5

# Nucleus area at which the size part of the score saturates (a small lymphocyte).
TYPICAL_NUCLEUS_AREA_UM2 = 30.0


@dataclass
class Detections:
    """Nucleated cells found in one image.

    Attributes
    ----------
    positions : (N, 2) float ndarray
        Centre of each cell's nucleus region, (row, col) in pixels of the input image.
    diameters : (N,) float ndarray
        Equivalent diameter of each nucleus region (lobes merged), in pixels.
    scores : (N,) float ndarray
        Detection confidence in [0, 1]; a heuristic from size and stain strength, not a
        calibrated probability.
    mpp : float
        µm/px used; NaN when it was unknown and could not be estimated (then N is 0).
    mpp_estimated : bool
        True when ``mpp`` was estimated from the image.
    """

    positions: np.ndarray
    diameters: np.ndarray
    scores: np.ndarray
    mpp: float
    mpp_estimated: bool

    def __len__(self) -> int:
        return len(self.scores)


def detect_cells(image: np.ndarray, mpp: float | None = None) -> Detections:
    """Detect the nucleated cells of a Romanowsky-stained smear image.

    Finds leukocytes, erythroblasts, plasma cells and blasts; red cells and platelets are
    not reported. The lobes of one segmented nucleus count as one cell.

    Parameters
    ----------
    image : (rows, cols, 3) uint8 ndarray
        RGB image.
    mpp : float, optional
        Pixel size in µm/px. When None it is estimated with :func:`estimate_mpp`,
        and ``Detections.mpp_estimated`` is True.

    Returns
    -------
    Detections
        One entry per cell; empty arrays when the image has none.

    Raises
    ------
    ValueError
        If ``image`` is not a (rows, cols, 3) array or ``mpp`` is not a positive number.
    """
    image = _check_image(image)
    mpp_used, estimated = _resolve_mpp(image, mpp)
    if mpp_used is None:
        logger.info("No µm/px given and none could be estimated: no cells reported.")
        return _empty(float("nan"), estimated=True)

    factor = max(1, int(WORK_MPP_UM / mpp_used))
    work_mpp = mpp_used * factor
    small = block_mean(image, factor)
    stain = nucleus_stain(small)
    threshold = nucleus_threshold(stain)
    mask = _nucleus_mask(stain > threshold, work_mpp)
    labels = _split_touching(mask, work_mpp, optical_density(small))
    return _measure(labels, stain, threshold, factor, mpp_used, estimated)


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"Expected an RGB image of shape (rows, cols, 3), got shape {image.shape}; "
            "drop an alpha channel with image[..., :3]."
        )
    return image


def _resolve_mpp(image: np.ndarray, mpp: float | None) -> tuple[float | None, bool]:
    if mpp is None:
        return estimate_mpp(image), True
    if not np.isfinite(mpp) or mpp <= 0:
        raise ValueError(f"mpp must be a positive number of µm per pixel, got {mpp!r}.")
    return float(mpp), False


def _empty(mpp: float, estimated: bool) -> Detections:
    return Detections(
        positions=np.zeros((0, 2)),
        diameters=np.zeros(0),
        scores=np.zeros(0),
        mpp=mpp,
        mpp_estimated=estimated,
    )


def _disk(radius_um: float, mpp: float) -> np.ndarray:
    from skimage.morphology import disk

    return disk(max(1, int(round(radius_um / mpp))))


def _nucleus_mask(mask: np.ndarray, mpp: float) -> np.ndarray:
    """Clean the thresholded stain map and merge the lobes of one nucleus."""
    from scipy import ndimage as ndi
    from skimage.morphology import remove_small_holes, remove_small_objects

    pixel_area = mpp * mpp
    mask = ndi.binary_opening(mask, _disk(NOISE_RADIUS_UM, mpp))
    mask = ndi.binary_closing(mask, _disk(MERGE_RADIUS_UM, mpp), border_value=0)
    mask = remove_small_holes(mask, max_size=int(MAX_HOLE_AREA_UM2 / pixel_area))
    return remove_small_objects(mask, max_size=int(MIN_NUCLEUS_AREA_UM2 / pixel_area))


def _split_touching(mask: np.ndarray, mpp: float, density: np.ndarray) -> np.ndarray:
    """Label nucleus regions, splitting regions that hold several round cores.

    A region is split only when its cores are nuclei of different cells: regions that
    :func:`_is_granulocyte` takes for the lobes of one eosinophil stay whole.
    """
    from scipy import ndimage as ndi
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    regions, _ = ndi.label(mask)
    distance = ndi.distance_transform_edt(mask)
    peaks = peak_local_max(
        distance,
        min_distance=max(1, int(round(CORE_SEPARATION_UM / mpp))),
        threshold_abs=CORE_RADIUS_UM / mpp,
        labels=regions,
        exclude_border=False,
    )
    peak_regions = regions[tuple(peaks.T)]
    region_ids, counts = np.unique(peak_regions, return_counts=True)
    split_ids = region_ids[counts > 1]
    if split_ids.size:
        lobed = _is_granulocyte(regions, split_ids, mask, density, mpp)
        split_ids = split_ids[~lobed]
    if split_ids.size == 0:
        return regions

    markers = np.zeros_like(regions)
    keep = np.isin(regions, split_ids, invert=True) & mask
    markers[keep] = regions[keep]
    to_split = np.isin(peak_regions, split_ids)
    markers[tuple(peaks[to_split].T)] = regions.max() + 1 + np.arange(to_split.sum())
    return watershed(-distance, markers, mask=mask)


def _is_granulocyte(
    regions: np.ndarray,
    region_ids: np.ndarray,
    mask: np.ndarray,
    density: np.ndarray,
    mpp: float,
) -> np.ndarray:
    """Tell which multi-core nucleus regions are the lobes of one eosinophil.

    Cytology, not fitted thresholds: the lobes of one eosinophil share one cytoplasm full
    of eosinophilic granules, which stain orange-red, denser and redder than the field's
    red cells. Touching plasma cells, lymphocytes, blasts and early erythroblasts each
    have their own blue (basophilic) cytoplasm, which absorbs red light more than the red
    cells do. So a region is kept whole when the cytoplasm ring around it is at least as
    red (``OD_green - OD_red``) and at least as dense (summed optical density) as the
    field's red cells, and the whole region still fits in one cell
    (``MAX_LOBED_NUCLEUS_SPAN_UM``). The comparison with the same field's red cells makes
    the test independent of the stain batch and the white balance, and the ring does not
    depend on the µm/px beyond its width.

    Parameters
    ----------
    regions : (rows, cols) int ndarray
        Labelled nucleus regions.
    region_ids : (K,) int ndarray
        Labels of the regions to test.
    mask : (rows, cols) bool ndarray
        Nucleus mask (``regions > 0``).
    density : (rows, cols, 3) float ndarray
        Optical density of the same pixels (:func:`optical_density`).
    mpp : float
        µm/px of these pixels.

    Returns
    -------
    (K,) bool ndarray
        True for the regions to keep whole.
    """
    from scipy import ndimage as ndi
    from skimage.filters import threshold_otsu

    redness = density[..., 1] - density[..., 0]
    total = density.sum(axis=-1)
    if not (~mask).any() or float(np.ptp(total[~mask])) == 0.0:
        return np.zeros(region_ids.shape, dtype=bool)
    red_cells = ~mask & (total > threshold_otsu(total[~mask]))
    if not red_cells.any():
        return np.zeros(region_ids.shape, dtype=bool)
    field_redness = float(np.median(redness[red_cells]))
    field_total = float(np.median(total[red_cells]))

    ring_disk = _disk(CYTOPLASM_RING_UM, mpp)
    slices = ndi.find_objects(regions)
    keep = np.zeros(region_ids.shape, dtype=bool)
    for k, region_id in enumerate(region_ids):
        window = _grow(slices[region_id - 1], ring_disk.shape[0], regions.shape)
        region = regions[window] == region_id
        if _span_um(region, mpp) > MAX_LOBED_NUCLEUS_SPAN_UM:
            continue
        ring = ndi.binary_dilation(region, ring_disk) & ~mask[window]
        if not ring.any():
            continue
        keep[k] = (
            float(np.median(redness[window][ring])) >= field_redness
            and float(np.median(total[window][ring])) >= field_total
        )
    return keep


def _grow(window: tuple[slice, slice], margin: int, shape: tuple[int, ...]) -> tuple[slice, ...]:
    return tuple(
        slice(max(0, s.start - margin), min(n, s.stop + margin)) for s, n in zip(window, shape)
    )


def _span_um(region: np.ndarray, mpp: float) -> float:
    """Largest distance between two pixels of ``region`` (its Feret diameter), in µm."""
    rows, cols = np.nonzero(region)
    points = np.column_stack([rows, cols]).astype(float)
    if len(points) > 400:
        from scipy.spatial import ConvexHull

        points = points[ConvexHull(points).vertices]
    gaps = points[:, None, :] - points[None, :, :]
    return float(np.sqrt((gaps**2).sum(axis=-1).max())) * mpp


def _measure(
    labels: np.ndarray,
    stain: np.ndarray,
    threshold: float,
    factor: int,
    mpp: float,
    estimated: bool,
) -> Detections:
    """Turn labelled nucleus regions into detections in input-image pixels."""
    from skimage.measure import regionprops

    work_mpp = mpp * factor
    min_area_px = MIN_NUCLEUS_AREA_UM2 / work_mpp**2
    rows = []
    for region in regionprops(labels, intensity_image=stain):
        if region.area < min_area_px:
            continue
        area_um2 = region.area * work_mpp**2
        size_score = min(1.0, area_um2 / TYPICAL_NUCLEUS_AREA_UM2)
        stain_score = min(1.0, float(region.intensity_mean) / (2.0 * threshold))
        rows.append((*region.centroid, region.equivalent_diameter_area, size_score * stain_score))
    if not rows:
        return _empty(mpp, estimated)

    table = np.asarray(rows, dtype=float)
    # NOTE: work pixel j covers input pixels j*factor .. j*factor + factor - 1.
    positions = table[:, :2] * factor + (factor - 1) / 2.0
    return Detections(
        positions=positions,
        diameters=table[:, 2] * factor,
        scores=np.clip(table[:, 3], 0.0, 1.0),
        mpp=mpp,
        mpp_estimated=estimated,
    )
