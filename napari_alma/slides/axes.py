"""Reduce a stored array with named axes to the (rows, cols) or (rows, cols, 3) image layout."""

from __future__ import annotations

from pathlib import Path

from napari_alma.slides.slide import cannot_open

#: Axis letters as tifffile writes them: Y rows, X columns, S samples (RGB interleaved),
#: C channels (planar). Any other letter (T, Z, Q, I, ...) is reduced to its first index.
IMAGE_AXES = "YXSC"


def to_image_layout(array, axes: str, path: Path):
    """Reorder and index ``array`` into the ``(rows, cols)`` or ``(rows, cols, 3)`` layout.

    Every axis other than Y, X, S and C keeps only its first index (first time point,
    first focal plane). A planar channel axis C is read as S when S is absent. Four
    samples (RGBA) lose the alpha, two samples (grey and alpha) keep the grey, and one
    sample is squeezed away.

    Parameters
    ----------
    array : dask array
        The stored level, lazily.
    axes : str
        One tifffile axis letter per dimension of ``array`` (``"YXS"``, ``"CYX"``, ...).
    path : Path
        The slide, named in the error.

    Returns
    -------
    dask array
        ``(rows, cols)`` or ``(rows, cols, 3)``, still lazy.

    Raises
    ------
    SlideError
        When Y or X is missing, or the sample count is not 1-4.
    """
    axes = axes.upper()
    if "Y" not in axes or "X" not in axes:
        raise cannot_open(
            path,
            f"its image has axes {axes!r} without both Y (rows) and X (columns)",
            "Export the slide as a 2-D RGB or grey image.",
        )
    array, axes = _first_index_of_other_axes(array, axes)
    if "S" in axes and "C" in axes:
        array, axes = array[_index_first(axes, "C")], axes.replace("C", "")
    axes = axes.replace("C", "S")
    if "S" not in axes:
        return array.transpose(axes.index("Y"), axes.index("X"))
    array = array.transpose(axes.index("Y"), axes.index("X"), axes.index("S"))
    return _keep_colour_samples(array, path)


def _first_index_of_other_axes(array, axes: str):
    index = tuple(slice(None) if axis in IMAGE_AXES else 0 for axis in axes)
    kept = "".join(axis for axis in axes if axis in IMAGE_AXES)
    return array[index], kept


def _index_first(axes: str, axis: str) -> tuple:
    return tuple(0 if name == axis else slice(None) for name in axes)


def _keep_colour_samples(array, path: Path):
    samples = int(array.shape[2])
    if samples == 3:
        return array
    if samples == 4:
        return array[:, :, :3]
    if samples in (1, 2):
        return array[:, :, 0]
    raise cannot_open(
        path,
        f"its image has {samples} channels, but napari-alma reads RGB (3 channels) or "
        "grey (1 channel) images",
        "Export the slide as an RGB image.",
    )
