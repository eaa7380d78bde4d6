"""OME-Zarr folders: NGFF 0.4 on Zarr v2 and NGFF 0.5 on Zarr v3."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from napari_alma.slides.axes import to_image_layout
from napari_alma.slides.metadata import length_in_micrometres, plausible_mpp, split_private
from napari_alma.slides.slide import Slide, cannot_open

logger = logging.getLogger(__name__)

#: Files whose presence makes a folder a Zarr store (v2 group/array, v3 node).
ZARR_METADATA_FILES = (".zgroup", ".zattrs", ".zarray", "zarr.json")
#: Datasets with at most this many chunks are checked for missing chunk files when opened.
MAX_CHECKED_CHUNKS = 16384
_REMEDY = "Write the image again as OME-Zarr, for example with `napari-alma convert`."


def is_zarr_store(path: Path) -> bool:
    """Tell whether ``path`` is a folder with Zarr v2 or v3 metadata at its root."""
    return path.is_dir() and any((path / name).is_file() for name in ZARR_METADATA_FILES)


def has_multiscales(path: Path) -> bool:
    """Tell cheaply whether a folder is an OME-Zarr image, without raising.

    Reads only the root attributes file (``.zattrs`` for Zarr v2, ``zarr.json`` for
    Zarr v3) and looks for NGFF ``multiscales`` or a bioformats2raw layout.
    """
    for name in (".zattrs", "zarr.json"):
        try:
            document = json.loads((path / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(document, dict):
            continue
        attributes = document.get("attributes", document)
        if isinstance(attributes, dict) and _ome_attributes(attributes):
            return True
    return False


def open_ome_zarr(path: Path) -> Slide:
    """Open the first multiscale image of an OME-Zarr folder as a lazy slide.

    The axes come from the ``multiscales`` metadata. A channel axis ``c`` (first or last)
    with 3 or 4 entries becomes the trailing RGB axis, and other non-spatial axes keep
    their first index. The pixel size is the ``x`` scale of the first dataset (times the
    multiscale-wide scale, if any) when the ``x`` axis gives a length unit.

    Parameters
    ----------
    path : Path
        A folder for which ``is_zarr_store`` is true.

    Returns
    -------
    Slide
        One dask array per dataset, in the order of the metadata (full resolution first).

    Raises
    ------
    SlideError
        When the folder is not readable by zarr, has no ``multiscales``, or names a
        dataset or axis that is missing.
    """
    group, attributes = _open_image_group(path)
    multiscale = attributes["multiscales"][0]
    axes = _axis_letters(multiscale, path)
    levels = [
        to_image_layout(_dataset_array(group, dataset, path), axes, path)
        for dataset in multiscale.get("datasets", [])
    ]
    if not levels:
        raise cannot_open(path, "its multiscales metadata lists no datasets", _REMEDY)
    mpp = plausible_mpp(_ngff_mpp(multiscale), f"{path} coordinateTransformations")
    public, private = split_private(_ngff_fields(group, attributes, multiscale))
    return Slide(path, levels, mpp, "ome-zarr", public, private)


def _open_image_group(path: Path):
    import zarr

    try:
        group = zarr.open_group(path, mode="r")
    except (zarr.errors.BaseZarrError, OSError, ValueError) as err:
        raise cannot_open(path, f"zarr cannot open it as a group ({err})", _REMEDY) from err
    attributes = _ome_attributes(group.attrs.asdict())
    if attributes and "multiscales" not in attributes and "0" in group:
        # bioformats2raw layout: the images are the numbered subgroups.
        group = group["0"]
        attributes = _ome_attributes(group.attrs.asdict())
    if not attributes or not attributes.get("multiscales"):
        raise cannot_open(path, "it is a Zarr store without OME-NGFF multiscales metadata", _REMEDY)
    return group, attributes


def _ome_attributes(attributes: dict) -> dict:
    # NGFF 0.5 nests its keys under "ome"; 0.4 and earlier put them at the top level.
    nested = attributes.get("ome")
    candidate = nested if isinstance(nested, dict) else attributes
    if "multiscales" in candidate or "bioformats2raw.layout" in candidate:
        return candidate
    return {}


def _axis_letters(multiscale: dict, path: Path) -> str:
    axes = multiscale.get("axes")
    if axes is None:
        # NGFF 0.1-0.2 had no axes and always stored 5-D (t, c, z, y, x).
        return "TCZYX"
    letters = "".join(_axis_letter(axis) for axis in axes)
    if "Y" not in letters or "X" not in letters:
        raise cannot_open(path, f"its axes {_axis_names(axes)} lack 'y' or 'x'", _REMEDY)
    return letters


def _axis_letter(axis) -> str:
    """Map an NGFF axis (a name, or a dict with name and type) to a tifffile-style letter."""
    name = str(axis.get("name") if isinstance(axis, dict) else axis).lower()
    kind = axis.get("type") if isinstance(axis, dict) else None
    if name in ("y", "x"):
        return name.upper()
    if name == "c" or kind == "channel":
        return "C"
    return "Q"


def _axis_names(axes: list) -> list:
    return [axis.get("name") if isinstance(axis, dict) else axis for axis in axes]


def _dataset_array(group, dataset: dict, path: Path):
    import dask.array as da

    name = dataset.get("path")
    if name is None or name not in group:
        raise cannot_open(
            path, f"the dataset {name!r} named in its multiscales metadata is missing", _REMEDY
        )
    array = group[name]
    _check_chunks_present(array, path, name)
    return da.from_zarr(array)


def _check_chunks_present(array, path: Path, name: str) -> None:
    """Raise when chunk files of a dataset are missing, as an interrupted copy leaves it.

    NOTE: Zarr allows a writer to leave out chunks that hold only the fill value, and
    they would be reported here too. Brightfield slides have no such chunks, and
    ``napari-alma convert`` writes every chunk. Datasets with more than
    ``MAX_CHECKED_CHUNKS`` chunks are not checked, so that opening stays fast; a chunk
    missing there reads as the fill value.
    """
    if array.nchunks > MAX_CHECKED_CHUNKS:
        return
    present = array.nchunks_initialized
    if present < array.nchunks:
        raise cannot_open(
            path,
            f"{array.nchunks - present} of the {array.nchunks} chunks of dataset {name!r} "
            "are missing",
            "Copy the whole OME-Zarr folder again; an interrupted copy leaves chunks out.",
        )


def _ngff_mpp(multiscale: dict) -> float | None:
    axes = multiscale.get("axes") or []
    names = _axis_names(axes)
    if "x" not in names or not isinstance(axes[names.index("x")], dict):
        return None
    x_index = names.index("x")
    scale = _scale_of(multiscale["datasets"][0], len(names))
    global_scale = _scale_of(multiscale, len(names))
    size = scale[x_index] * global_scale[x_index]
    return length_in_micrometres(size, axes[x_index].get("unit"))


def _scale_of(node: dict, ndim: int) -> list[float]:
    for transform in node.get("coordinateTransformations", []):
        if transform.get("type") == "scale" and "scale" in transform:
            return [float(value) for value in transform["scale"]]
    return [1.0] * ndim


def _ngff_fields(group, attributes: dict, multiscale: dict) -> dict:
    version = multiscale.get("version") or attributes.get("version")
    return {
        "ngff_version": version,
        "zarr_format": group.metadata.zarr_format,
        "axes": _axis_names(multiscale.get("axes", [])),
        "datasets": [dataset.get("path") for dataset in multiscale.get("datasets", [])],
        "name": multiscale.get("name"),
    }
