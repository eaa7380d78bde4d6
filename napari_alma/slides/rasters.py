"""JPEG and PNG fields: one level, decoded on first access, EXIF orientation applied."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from napari_alma.slides.metadata import plausible_mpp, split_private
from napari_alma.slides.slide import Slide, cannot_open

logger = logging.getLogger(__name__)

_EXIF_ORIENTATION = 0x0112
_EXIF_RESOLUTION_UNIT = 0x0128
_EXIF_X_RESOLUTION = 0x011A
# EXIF orientations 5-8 turn the image by 90 degrees, swapping rows and columns.
_TRANSPOSED_ORIENTATIONS = {5, 6, 7, 8}
# Chunk side of the dask array over the decoded image.
_CHUNK_SIDE = 2048
# The JPEG end-of-image marker must appear within this many bytes of the end of the file.
_JPEG_TRAILER_BYTES = 4096

# Pillow mode -> (mode to convert to, numpy dtype, samples). None keeps the mode.
_MODES = {
    "RGB": (None, np.uint8, 3),
    "L": (None, np.uint8, 1),
    "1": ("L", np.uint8, 1),
    "LA": ("L", np.uint8, 1),
    "La": ("L", np.uint8, 1),
    "I;16": (None, np.uint16, 1),
    "I;16L": (None, np.uint16, 1),
    "I;16B": (None, np.uint16, 1),
    "I;16N": (None, np.uint16, 1),
    "I": (None, np.int32, 1),
    "F": (None, np.float32, 1),
}
# Any other mode (RGBA, P, PA, CMYK, YCbCr, LAB, HSV, ...) is converted to 8-bit RGB.
_DEFAULT_MODE = ("RGB", np.uint8, 3)


def open_raster(path: Path, file_format: str) -> Slide:
    """Open a JPEG or PNG file as a one-level slide without decoding its pixels.

    Parameters
    ----------
    path : Path
        An existing, non-empty JPEG or PNG file.
    file_format : {"jpeg", "png"}
        The format found from the file's first bytes.

    Returns
    -------
    Slide
        One lazy level: ``(rows, cols, 3)`` uint8 for colour images, ``(rows, cols)`` for
        grey (uint8, or uint16 for 16-bit grey PNG). 16-bit colour PNG stays uint16.

    Raises
    ------
    SlideError
        When Pillow cannot read the header or the file is truncated.
    """
    _check_complete(path, file_format)
    header = _read_header(path)
    decoder = _DecodedImage(path, header)
    level = _lazy_array(decoder)
    fields = _exif_fields(header["exif"])
    fields["pillow_mode"] = header["mode"]
    fields["exif_orientation"] = header["orientation"]
    public, private = split_private(fields)
    mpp = plausible_mpp(_raster_mpp(header["info"], header["exif"]), f"{path} resolution")
    return Slide(path, [level], mpp, file_format, public, private)


def _read_header(path: Path) -> dict:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            exif = image.getexif()
            header = {
                "size": image.size,
                "mode": image.mode,
                "info": dict(image.info),
                "exif": dict(exif),
                "orientation": int(exif.get(_EXIF_ORIENTATION, 1)),
            }
    except Image.DecompressionBombError as err:
        raise cannot_open(
            path,
            f"the image is larger than Pillow's safety limit of {Image.MAX_IMAGE_PIXELS} pixels",
            "Convert it to a tiled TIFF or OME-Zarr, or raise PIL.Image.MAX_IMAGE_PIXELS.",
        ) from err
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise cannot_open(
            path,
            f"Pillow cannot read the image header ({err})",
            "Check that the file is a complete JPEG or PNG image.",
        ) from err
    header.update(_decoded_layout(path, header))
    return header


def _decoded_layout(path: Path, header: dict) -> dict:
    width, height = header["size"]
    if header["orientation"] in _TRANSPOSED_ORIENTATIONS:
        width, height = height, width
    convert, dtype, samples = _MODES.get(header["mode"], _DEFAULT_MODE)
    if _is_16bit_colour_png(path):
        convert, dtype = None, np.uint16
    shape = (height, width, 3) if samples == 3 else (height, width)
    return {"convert": convert, "dtype": np.dtype(dtype), "shape": shape}


def _is_16bit_colour_png(path: Path) -> bool:
    # Pillow reduces 16-bit RGB(A) PNG to 8 bits, so those are decoded with imagecodecs.
    # IHDR fields follow the 8-byte signature and the 8-byte chunk header.
    with open(path, "rb") as file:
        head = file.read(26)
    is_png = head[:8] == b"\x89PNG\r\n\x1a\n"
    return is_png and len(head) == 26 and head[24] == 16 and head[25] in (2, 6)


class _DecodedImage:
    """Array-like view of an image file that decodes it once, on the first indexing.

    NOTE: the decoded pixels stay in memory as long as the dask array does, so that
    napari's chunk requests and the computed overview levels do not decode the file again.
    """

    def __init__(self, path: Path, header: dict):
        self.path = path
        self.header = header
        self.shape = header["shape"]
        self.dtype = header["dtype"]
        self.ndim = len(self.shape)
        self._pixels = None
        self._lock = threading.Lock()

    def __getitem__(self, index):
        with self._lock:
            if self._pixels is None:
                self._pixels = self._decode()
        return self._pixels[index]

    def _decode(self) -> np.ndarray:
        logger.debug("Decoding %s", self.path)
        try:
            pixels = self._decode_pixels()
        except (OSError, ValueError, SyntaxError) as err:
            raise cannot_open(
                self.path,
                f"decoding the image failed ({err})",
                "Copy the file again from its source; it may be damaged.",
            ) from err
        if pixels.shape != self.shape:
            raise cannot_open(
                self.path,
                f"the decoded image has shape {pixels.shape}, but its header gives {self.shape}",
                "Copy the file again from its source; it may be damaged.",
            )
        return pixels

    def _decode_pixels(self) -> np.ndarray:
        from PIL import Image, ImageOps

        if _is_16bit_colour_png(self.path):
            return _decode_png16(self.path, self.header["orientation"])
        with Image.open(self.path) as image:
            if self.header["orientation"] != 1:
                image = ImageOps.exif_transpose(image)
            if self.header["convert"] is not None:
                image = image.convert(self.header["convert"])
            return np.asarray(image).astype(self.dtype, copy=False)


def _decode_png16(path: Path, orientation: int) -> np.ndarray:
    import imagecodecs

    pixels = imagecodecs.png_decode(path.read_bytes())[:, :, :3]
    if orientation != 1:
        # NOTE: EXIF orientation of a 16-bit colour PNG is not applied, because imagecodecs
        # decodes the pixels only.
        logger.warning("Ignoring EXIF orientation %d of 16-bit PNG %s", orientation, path)
    return pixels


def _lazy_array(decoder: _DecodedImage):
    import dask.array as da

    chunks = (_CHUNK_SIDE, _CHUNK_SIDE) + (-1,) * (decoder.ndim - 2)
    meta = np.empty((0,) * decoder.ndim, dtype=decoder.dtype)
    return da.from_array(decoder, chunks=chunks, lock=False, asarray=False, meta=meta)


def _check_complete(path: Path, file_format: str) -> None:
    size = path.stat().st_size
    with open(path, "rb") as file:
        file.seek(max(size - _JPEG_TRAILER_BYTES, 0))
        tail = file.read()
    if file_format == "jpeg":
        complete = b"\xff\xd9" in tail
        marker = "the JPEG end-of-image marker (FF D9)"
    else:
        complete = b"IEND" in tail
        marker = "the PNG IEND chunk"
    if not complete:
        raise cannot_open(
            path,
            f"the file is truncated: {marker} is missing from the last "
            f"{min(size, _JPEG_TRAILER_BYTES)} of its {size} bytes",
            "Copy the file again from its source.",
        )


def _raster_mpp(info: dict, exif: dict) -> float | None:
    dpi = info.get("dpi")
    if dpi and float(dpi[0]) > 0:
        return 25400.0 / float(dpi[0])
    resolution = exif.get(_EXIF_X_RESOLUTION)
    unit_um = {2: 25400.0, 3: 10000.0}.get(exif.get(_EXIF_RESOLUTION_UNIT, 2))
    if resolution and unit_um and float(resolution) > 0:
        return unit_um / float(resolution)
    return None


def _exif_fields(exif: dict) -> dict:
    from PIL import ExifTags

    fields = {}
    for tag, value in exif.items():
        name = ExifTags.TAGS.get(tag, f"exif_{tag:#06x}")
        if isinstance(value, bytes):
            continue
        fields[name] = value if isinstance(value, (int, float, str)) else str(value)
    return fields
