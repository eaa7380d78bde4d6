"""Write a slide as an OME-Zarr pyramid: NGFF 0.5 on Zarr v3, 512-pixel chunks, compressed.

The store is written into a hidden sibling folder and renamed into place only when every
level and the metadata are complete. An error or an interruption (Ctrl+C) removes the
partial folder, so no readable-but-incomplete store is left behind.

A converted store was checked by hand with ome-zarr 0.18 and napari-ome-zarr 0.10, which
both open it, and with ome-zarr-models 1.7, which validates it as NGFF 0.5. Those packages
are not dependencies, so the tests check the metadata fields themselves.
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from napari_alma.slides.fingerprint import fingerprint
from napari_alma.slides.pyramid import block_mean
from napari_alma.slides.reader import open_slide
from napari_alma.slides.slide import Slide

logger = logging.getLogger(__name__)

NGFF_VERSION = "0.5"
#: Chunk side (rows and columns) of every written level, in pixels of that level.
CHUNK_SIDE = 512
#: Levels are added by 2x2 block means until both sides of the coarsest are at most this.
COARSEST_MAX_SIDE = 512
#: Upper bound on the pixels held in memory at once while copying a level, in bytes.
BAND_BYTES = 64 << 20

Progress = Callable[[float, str], None]


def convert_to_ome_zarr(
    source: Path | str,
    target: Path | str,
    include_private: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
    mpp: float | None = None,
) -> dict:
    """Write a slide as an NGFF 0.5 OME-Zarr pyramid on Zarr v3.

    The stored levels of ``source`` are copied pixel for pixel. Coarser levels, each the
    2x2 block mean of the previous one, follow until both sides are at most
    ``COARSEST_MAX_SIDE``. Each dataset's scale and translation place its pixel centres on
    the level-0 grid exactly as ``Slide.level_scale_translate`` does, in micrometres when
    the slide's µm/px is known, else in level-0 pixels without a unit.

    Parameters
    ----------
    source : Path or str
        Any slide that ``open_slide`` reads.
    target : Path or str
        The OME-Zarr folder to create, conventionally ending in ``.ome.zarr``.
    include_private : bool, optional
        Copy the metadata fields that can identify a patient (free-text descriptions,
        dates, names, barcodes) and the source file name. Off by default.
    overwrite : bool, optional
        Replace an existing ``target``. The old folder is removed only after the new
        one is complete.
    progress : callable, optional
        Called as ``progress(fraction, message)`` with the fraction of pixels written.
    mpp : float, optional
        µm per level-0 pixel to write, for a source whose file states none (a camera
        field, for example). It replaces the file's own value, with a logged warning.

    Returns
    -------
    dict
        ``{"target", "levels": [[rows, cols], ...], "mpp", "ngff_version",
        "private_metadata_copied"}``.

    Raises
    ------
    FileExistsError
        When ``target`` exists and ``overwrite`` is false.
    ValueError
        When ``target`` is the source itself.
    SlideError
        When the source cannot be read.
    ValueError
        When ``mpp`` is outside 0.01-10 µm/px.
    """
    source, target = Path(source), Path(target)
    if mpp is not None and not 0.01 <= mpp <= 10:
        raise ValueError(f"Pixel size {mpp} µm/px is outside the plausible 0.01-10 µm/px.")
    _check_target(source, target, overwrite)
    with open_slide(source, overview_levels=False) as slide:
        if mpp is not None:
            if slide.mpp is not None and abs(slide.mpp - mpp) > 1e-6 * mpp:
                logger.warning("%s states %.6g µm/px; writing %.6g µm/px as given.",
                               source, slide.mpp, mpp)
            slide.mpp = mpp
        shapes = planned_shapes([level.shape[:2] for level in slide.levels])
        partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial",
                                        dir=target.parent))
        try:
            with _DeferredInterrupt() as interrupt:
                counter = _PixelCounter(shapes, progress, interrupt)
                _write_store(slide, partial / "store", shapes, counter, include_private)
            _move_into_place(partial / "store", target, overwrite)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    logger.info("Wrote %s: %d levels from %s", target, len(shapes), source)
    return {
        "target": str(target),
        "levels": [list(shape) for shape in shapes],
        "mpp": slide.mpp,
        "ngff_version": NGFF_VERSION,
        "private_metadata_copied": include_private,
    }


class _DeferredInterrupt:
    """Defer Ctrl+C until the chunk being written is complete, then raise KeyboardInterrupt.

    zarr writes chunks from its own I/O thread. If KeyboardInterrupt were raised while the
    main thread waits for a write, that write could finish after the partial folder is
    removed and create it again. A second Ctrl+C interrupts at once. Outside the main
    thread, where signal handlers cannot be set, Ctrl+C is not deferred.
    """

    def __init__(self):
        self.requested = False
        self.previous = None

    def __enter__(self) -> _DeferredInterrupt:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._request)
        return self

    def _request(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def check(self) -> None:
        """Raise KeyboardInterrupt if Ctrl+C was pressed since entering."""
        if self.requested:
            raise KeyboardInterrupt

    def __exit__(self, *exc_info) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def _check_target(source: Path, target: Path, overwrite: bool) -> None:
    if target.resolve() == source.resolve():
        raise ValueError(
            f"Cannot convert {source} onto itself; choose another output folder."
        )
    if target.exists() and not overwrite:
        raise FileExistsError(
            f"{target} already exists; choose another output, or pass --overwrite to "
            "replace it."
        )
    if not target.parent.is_dir():
        raise FileNotFoundError(
            f"Cannot write {target}: the folder {target.parent} does not exist. Create it "
            "first."
        )


def _write_store(slide: Slide, folder: Path, shapes: list, counter: _PixelCounter,
                 include_private: bool) -> None:
    import zarr

    group = zarr.open_group(folder, mode="w", zarr_format=3)
    arrays = []
    for index in range(len(shapes)):
        level = slide.levels[index] if index < len(slide.levels) else _halve(arrays[-1])
        arrays.append(_write_level(group, str(index), level, counter))
    # NOTE: the OME metadata is written last, so that even the partial folder is not
    # recognised as an image before every level is complete.
    group.attrs.update(_attributes(slide, shapes, include_private))


def planned_shapes(stored: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Return the (rows, cols) of every written level: the stored ones, then halvings.

    Parameters
    ----------
    stored : list of (rows, cols)
        The stored level shapes, full resolution first.

    Returns
    -------
    list of (rows, cols)
        ``stored`` followed by ``(rows // 2, cols // 2)`` steps until both sides are at
        most ``COARSEST_MAX_SIDE``, or a side would drop below one pixel.
    """
    shapes = [tuple(int(side) for side in shape) for shape in stored]
    while max(shapes[-1]) > COARSEST_MAX_SIDE and min(shapes[-1]) >= 2:
        shapes.append((shapes[-1][0] // 2, shapes[-1][1] // 2))
    return shapes


def _halve(array):
    """Return the 2x2 block mean of a written level, as a lazy (rows, cols[, c]) array."""
    import dask.array as da

    level = da.from_zarr(array)
    if level.ndim == 3:
        level = da.moveaxis(level, 0, -1)
    return block_mean(level, 2)


def _write_level(group, name: str, level, counter: _PixelCounter):
    rows, cols = (int(side) for side in level.shape[:2])
    samples = int(level.shape[2]) if level.ndim == 3 else None
    array = _create_array(group, name, (rows, cols), samples, level.dtype)
    band_cols = _band_columns(samples or 1, np.dtype(level.dtype).itemsize)
    for row in range(0, rows, CHUNK_SIDE):
        for col in range(0, cols, band_cols):
            block = np.asarray(level[row : row + CHUNK_SIDE, col : col + band_cols])
            region = (slice(row, row + block.shape[0]), slice(col, col + block.shape[1]))
            if samples is None:
                array[region] = block
            else:
                array[(slice(None), *region)] = np.moveaxis(block, -1, 0)
            counter.advance(block.shape[0] * block.shape[1], name)
    return array


def _create_array(group, name: str, shape: tuple, samples: int | None, dtype):
    from zarr.codecs import BloscCodec

    options = {
        "dtype": dtype,
        "compressors": [BloscCodec(cname="zstd", clevel=5, shuffle="bitshuffle")],
        "fill_value": 0,
        # Every chunk is written, even one equal to the fill value, so that the reader
        # can tell a complete store from an incomplete copy.
        "config": {"write_empty_chunks": True},
    }
    if samples is None:
        return group.create_array(name, shape=shape, chunks=(CHUNK_SIDE, CHUNK_SIDE),
                                  dimension_names=("y", "x"), **options)
    return group.create_array(name, shape=(samples, *shape),
                              chunks=(samples, CHUNK_SIDE, CHUNK_SIDE),
                              dimension_names=("c", "y", "x"), **options)


def _band_columns(samples: int, itemsize: int) -> int:
    """Return how many columns one copied block spans: whole chunks within BAND_BYTES."""
    chunks = BAND_BYTES // (CHUNK_SIDE * CHUNK_SIDE * samples * itemsize)
    return max(int(chunks), 1) * CHUNK_SIDE


class _PixelCounter:
    """Progress of a conversion, in pixels written.

    Each ``advance`` calls ``progress(fraction, message)`` and, after Ctrl+C, raises
    KeyboardInterrupt at that chunk boundary.
    """

    def __init__(self, shapes: list, progress: Progress | None, interrupt: _DeferredInterrupt):
        self.total = sum(rows * cols for rows, cols in shapes)
        self.done = 0
        self.progress = progress
        self.interrupt = interrupt

    def advance(self, pixels: int, level: str) -> None:
        self.interrupt.check()
        self.done += pixels
        if self.progress is not None:
            self.progress(self.done / self.total, f"level {level}")


def _attributes(slide: Slide, shapes: list, include_private: bool) -> dict:
    rgb = slide.rgb
    multiscale = {
        "name": slide.path.name if include_private else "image",
        "axes": _axes(rgb, slide.mpp is not None),
        "datasets": [_dataset(index, shapes, slide.mpp, rgb) for index in range(len(shapes))],
    }
    ome = {"version": NGFF_VERSION, "multiscales": [multiscale]}
    if rgb:
        ome["omero"] = _omero_rgb(slide.levels[0].dtype)
    return {"ome": ome, "napari_alma": _provenance(slide, include_private)}


def _axes(rgb: bool, has_mpp: bool) -> list[dict]:
    space = [{"name": name, "type": "space"} for name in ("y", "x")]
    if has_mpp:
        for axis in space:
            axis["unit"] = "micrometer"
    return ([{"name": "c", "type": "channel"}] if rgb else []) + space


def _dataset(index: int, shapes: list, mpp: float | None, rgb: bool) -> dict:
    """Return one dataset entry: its path, then its scale and translation."""
    unit = mpp if mpp is not None else 1.0
    rows, cols = shapes[index]
    downsample = [shapes[0][0] / rows, shapes[0][1] / cols]
    scale = [unit * factor for factor in downsample]
    # A level pixel summarises d level-0 pixels, so its centre sits (d - 1) / 2 level-0
    # pixels after the centre of the first one.
    translation = [unit * (factor - 1.0) / 2.0 for factor in downsample]
    channel = [1.0] if rgb else []
    channel_offset = [0.0] if rgb else []
    return {
        "path": str(index),
        "coordinateTransformations": [
            {"type": "scale", "scale": channel + scale},
            {"type": "translation", "translation": channel_offset + translation},
        ],
    }


def _omero_rgb(dtype) -> dict:
    """Return OMERO rendering settings that show the three channels as one RGB image."""
    dtype = np.dtype(dtype)
    maximum = float(np.iinfo(dtype).max) if dtype.kind in "ui" else 1.0
    window = {"start": 0.0, "end": maximum, "min": 0.0, "max": maximum}
    colours = (("red", "FF0000"), ("green", "00FF00"), ("blue", "0000FF"))
    channels = [
        {"label": label, "color": colour, "active": True, "coefficient": 1.0,
         "family": "linear", "inverted": False, "window": dict(window)}
        for label, colour in colours
    ]
    return {"channels": channels, "rdefs": {"model": "color"}}


def _provenance(slide: Slide, include_private: bool) -> dict:
    record = {
        "source_format": slide.format,
        "source_fingerprint": fingerprint(slide.path),
        "source_metadata": _json_safe(slide.metadata),
    }
    if include_private:
        record["source_file_name"] = slide.path.name
        record["source_private_metadata"] = _json_safe(slide.private_metadata)
    return record


def _json_safe(fields: dict) -> dict:
    """Return ``fields`` with every value JSON-serialisable (others become strings)."""
    return json.loads(json.dumps(fields, default=str, ensure_ascii=False))


def _move_into_place(folder: Path, target: Path, overwrite: bool) -> None:
    if not target.exists():
        folder.rename(target)
        return
    if not overwrite:
        raise FileExistsError(
            f"{target} appeared while converting; nothing was replaced. Choose another "
            "output, or pass --overwrite."
        )
    old = folder.parent / "replaced"
    target.rename(old)
    folder.rename(target)
    shutil.rmtree(old, ignore_errors=True)
