"""Pixel size and metadata fields shared by the format readers."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

#: Pixel sizes outside this range (µm/px) are treated as missing. Microscope images sit
#: between about 0.02 (oil immersion on a fine camera) and a few µm/px (low-power
#: overviews). The 72 or 96 dpi that image editors write (about 350 or 265 µm/px) is
#: rejected.
MPP_RANGE = (0.01, 10.0)

#: Micrometres per unit, for the length units that OME, NGFF and TIFF use.
MICROMETRES_PER_UNIT = {
    "m": 1e6,
    "meter": 1e6,
    "cm": 1e4,
    "centimeter": 1e4,
    "mm": 1e3,
    "millimeter": 1e3,
    "µm": 1.0,
    "μm": 1.0,
    "um": 1.0,
    "micrometer": 1.0,
    "micron": 1.0,
    "nm": 1e-3,
    "nanometer": 1e-3,
    "inch": 25400.0,
    "in": 25400.0,
}

# Field names (lower case) that can identify a patient, a person, a site or a date.
_PRIVATE_NAMES = {"time", "title", "label", "imagedescription", "description", "barcode"}
_PRIVATE_PARTS = (
    "date",
    "patient",
    "barcode",
    "filename",
    "user",
    "operator",
    "serial",
    "name",
    "artist",
    "host",
    "owner",
    "gps",
    "scanscope id",
    "copyright",
    "comment",
)


def plausible_mpp(mpp: float | None, source: str) -> float | None:
    """Return ``mpp`` when it lies in ``MPP_RANGE``, else None.

    Parameters
    ----------
    mpp : float or None
        Candidate pixel size in µm/px.
    source : str
        Where the value came from, for the debug log.

    Returns
    -------
    float or None
    """
    if mpp is None:
        return None
    if MPP_RANGE[0] <= mpp <= MPP_RANGE[1]:
        return float(mpp)
    logger.debug("Ignoring pixel size %.6g µm/px from %s: outside %s", mpp, source, MPP_RANGE)
    return None


def length_in_micrometres(value: float, unit: str | None) -> float | None:
    """Convert a length to µm, or return None when the unit is missing or unknown."""
    if unit is None:
        return None
    factor = MICROMETRES_PER_UNIT.get(unit.strip().lower())
    if factor is None:
        logger.debug("Unknown length unit %r", unit)
        return None
    return float(value) * factor


def is_private(name: str) -> bool:
    """Tell whether a metadata field may identify a patient, a person, a site or a date."""
    lowered = name.strip().lower()
    return lowered in _PRIVATE_NAMES or any(part in lowered for part in _PRIVATE_PARTS)


def split_private(fields: dict) -> tuple[dict, dict]:
    """Split metadata fields into (public, private) by name, as ``is_private`` decides."""
    public = {key: value for key, value in fields.items() if not is_private(key)}
    private = {key: value for key, value in fields.items() if is_private(key)}
    return public, private
