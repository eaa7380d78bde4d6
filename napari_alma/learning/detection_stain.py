"""Stain maps of Romanowsky-stained smears (May-Grünwald-Giemsa, Wright, Jenner-Giemsa).

Romanowsky nuclei are dark purple-blue: they absorb green light strongly and blue light
weakly. Red cells (pink to grey) and the background absorb green and blue about equally,
and the blue cytoplasm of lymphocytes and plasma cells absorbs red more than green. The
difference of optical densities ``OD_green - OD_blue`` therefore separates nuclear
chromatin (and platelets, which the caller removes by size) from everything else.
"""

from __future__ import annotations

import numpy as np

# Percentile of each channel taken as the brightness of unstained glass. A high
# percentile rather than the maximum, so that a few saturated specular highlights on red
# cells do not set the reference.
BACKGROUND_PERCENTILE = 99.0

# Lowest nucleus-stain threshold in optical-density units (log10). On a field without
# nuclei, Otsu's threshold falls on noise between background and red cells. Red cells
# reach about 0.06 and nuclei 0.2-0.5 on the BCCD and SegPC fields, so 0.12 keeps an
# empty field empty.
MIN_NUCLEUS_THRESHOLD_OD = 0.12

# Highest threshold: on a field crowded with nuclei Otsu may split dark from pale
# chromatin, which would cut the pale nuclei of blasts into fragments.
MAX_NUCLEUS_THRESHOLD_OD = 0.25


def block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """Shrink an RGB image by averaging ``factor`` x ``factor`` blocks.

    Parameters
    ----------
    image : (rows, cols, 3) ndarray
        RGB image.
    factor : int
        Block side in pixels, at least 1.

    Returns
    -------
    (ceil(rows / factor), ceil(cols / factor), 3) float32 ndarray
        Block means; the last row and column of blocks repeat the image's edge pixels.
    """
    if factor == 1:
        return image.astype(np.float32)
    rows, cols = image.shape[:2]
    pad_rows = -rows % factor
    pad_cols = -cols % factor
    padded = np.pad(image, ((0, pad_rows), (0, pad_cols), (0, 0)), mode="edge")
    blocks = padded.reshape(padded.shape[0] // factor, factor, padded.shape[1] // factor, factor, 3)
    return blocks.mean(axis=(1, 3), dtype=np.float32)


def optical_density(image: np.ndarray) -> np.ndarray:
    """Convert an RGB image to optical density relative to its own background.

    Parameters
    ----------
    image : (rows, cols, 3) ndarray
        RGB intensities (uint8 or float in 0-255).

    Returns
    -------
    (rows, cols, 3) float32 ndarray
        ``-log10(I / I0)`` per channel, where ``I0`` is the channel's background
        brightness; 0 on clear glass, larger where the stain absorbs.
    """
    pixels = image.reshape(-1, 3).astype(np.float32)
    background = np.percentile(pixels, BACKGROUND_PERCENTILE, axis=0)
    # A channel that is dark everywhere (an image of a nucleus only) keeps a floor so
    # that the ratio stays defined.
    background = np.maximum(background, 1.0)
    ratio = (image.astype(np.float32) + 1.0) / (background + 1.0)
    return -np.log10(np.clip(ratio, 1e-3, 1.0))


def nucleus_stain(image: np.ndarray) -> np.ndarray:
    """Map how strongly each pixel is stained like Romanowsky nuclear chromatin.

    Parameters
    ----------
    image : (rows, cols, 3) ndarray
        RGB intensities (uint8 or float in 0-255).

    Returns
    -------
    (rows, cols) float32 ndarray
        ``OD_green - OD_blue``: about 0 on glass and red cells, 0.2-0.5 on nuclei.
    """
    density = optical_density(image)
    return density[..., 1] - density[..., 2]


def nucleus_threshold(stain: np.ndarray) -> float:
    """Choose the nucleus-stain threshold of one field.

    Otsu's threshold, clipped to ``[MIN_NUCLEUS_THRESHOLD_OD, MAX_NUCLEUS_THRESHOLD_OD]``
    so that fields without nuclei stay empty and crowded fields keep pale nuclei whole.

    Parameters
    ----------
    stain : (rows, cols) float ndarray
        Output of :func:`nucleus_stain`.

    Returns
    -------
    float
        Threshold in optical-density units.
    """
    from skimage.filters import threshold_otsu

    if stain.size == 0 or float(stain.max()) <= float(stain.min()):
        return MIN_NUCLEUS_THRESHOLD_OD
    otsu = float(threshold_otsu(stain))
    return float(np.clip(otsu, MIN_NUCLEUS_THRESHOLD_OD, MAX_NUCLEUS_THRESHOLD_OD))
