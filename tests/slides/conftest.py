"""Slide files built in tmp_path from real SegPC bone-marrow fields.

No real pyramidal TIFF, SVS or OME-Zarr slide is in the test data, so these fixtures
derive them: a mosaic of SegPC JPEG fields, cropped to an odd size, written with
tifffile or zarr in the structure those formats use. Pixels of every level are kept
so that tests can compare what the reader returns with what was written.
"""

from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from PIL import Image

MPP = 0.25  # µm/px written into the derived files
SEGPC_FIELDS = ("1991", "1993", "1997")


@pytest.fixture(scope="session")
def derived_mpp() -> float:
    """µm/px written into the derived TIFF, SVS and OME-Zarr files."""
    return MPP


@pytest.fixture(scope="session")
def segpc_dir(data_root) -> Path:
    return data_root / "segpc2021_bm_plasma_cells" / "mini_test" / "images"


@pytest.fixture(scope="session")
def bccd_jpeg(data_root) -> Path:
    return data_root / "bccd" / "BCCD" / "JPEGImages" / "BloodImage_00000.jpg"


@pytest.fixture(scope="session")
def segpc_jpeg(segpc_dir) -> Path:
    return segpc_dir / "1991.jpg"


@pytest.fixture(scope="session")
def mosaic(segpc_dir) -> np.ndarray:
    """(1535, 4079, 3) uint8: two SegPC fields side by side, cropped to an odd size."""
    fields = [np.asarray(Image.open(segpc_dir / f"{name}.jpg")) for name in SEGPC_FIELDS[:2]]
    return np.concatenate(fields, axis=1)[:-1, :-1]


@pytest.fixture(scope="session")
def wide_mosaic(segpc_dir) -> np.ndarray:
    """(1536, 6120, 3) uint8: three SegPC fields side by side, wider than 4096 px."""
    fields = [np.asarray(Image.open(segpc_dir / f"{name}.jpg")) for name in SEGPC_FIELDS]
    return np.concatenate(fields, axis=1)


def pyramid_of(image: np.ndarray, count: int = 3) -> list[np.ndarray]:
    """Levels halved by taking every other pixel; odd sides round up."""
    return [image[:: 2**level, :: 2**level] for level in range(count)]


@pytest.fixture(scope="session")
def pyramid_tiff(tmp_path_factory, mosaic) -> tuple[Path, list[np.ndarray]]:
    """Tiled TIFF with the reduced levels in SubIFDs, as OME-TIFF writers lay them out."""
    path = tmp_path_factory.mktemp("tiff") / "mosaic_pyramid.tif"
    levels = pyramid_of(mosaic)
    options = {"tile": (256, 256), "photometric": "rgb", "compression": "zlib"}
    with tifffile.TiffWriter(path) as writer:
        writer.write(
            levels[0],
            subifds=len(levels) - 1,
            resolution=(1e4 / MPP, 1e4 / MPP),
            resolutionunit="CENTIMETER",
            **options,
        )
        for level in levels[1:]:
            writer.write(level, subfiletype=1, **options)
    return path, levels


@pytest.fixture(scope="session")
def svs_like(tmp_path_factory, mosaic) -> tuple[Path, list[np.ndarray]]:
    """TIFF laid out as Aperio SVS: tiled baseline, stripped thumbnail, tiled levels,
    then label and macro pages. No real SVS file is available to the tests."""
    path = tmp_path_factory.mktemp("svs") / "mosaic.svs"
    levels = pyramid_of(mosaic, count=2)
    description = (
        "Aperio Image Library v12.0.15 \r\n4079x1535 (256x256) J2K/YUV16 Q=70"
        f"|AppMag = 40|MPP = {MPP}|Filename = patient-0042|Date = 01/02/24|User = someone"
    )
    tiled = {"tile": (256, 256), "photometric": "rgb", "compression": "zlib", "metadata": None}
    with tifffile.TiffWriter(path) as writer:
        writer.write(levels[0], description=description, **tiled)
        writer.write(mosaic[::16, ::16], photometric="rgb", description="thumbnail", metadata=None)
        writer.write(levels[1], description="Aperio Image Library level", **tiled)
        writer.write(
            mosaic[:64, :64], photometric="rgb", subfiletype=1, description="label", metadata=None
        )
        writer.write(
            mosaic[:96, :96], photometric="rgb", subfiletype=9, description="macro", metadata=None
        )
    return path, levels


def write_ome_zarr(path: Path, levels: list[np.ndarray], zarr_format: int, channel_first: bool):
    """Write an NGFF image: 0.5 on Zarr v3, 0.4 on Zarr v2, RGB on a 'c' axis."""
    group = zarr.open_group(path, mode="w", zarr_format=zarr_format)
    datasets = []
    for index, level in enumerate(levels):
        data = np.moveaxis(level, -1, 0) if channel_first else level
        chunks = (3, 512, 512) if channel_first else (512, 512, 3)
        group.create_array(str(index), data=data, chunks=chunks)
        pixel = MPP * 2**index
        scale = [1.0, pixel, pixel] if channel_first else [pixel, pixel, 1.0]
        datasets.append(
            {"path": str(index), "coordinateTransformations": [{"type": "scale", "scale": scale}]}
        )
    space = [
        {"name": "y", "type": "space", "unit": "micrometer"},
        {"name": "x", "type": "space", "unit": "micrometer"},
    ]
    channel = [{"name": "c", "type": "channel"}]
    axes = channel + space if channel_first else space + channel
    version = "0.5" if zarr_format == 3 else "0.4"
    multiscale = {"name": "mosaic", "axes": axes, "datasets": datasets}
    if zarr_format == 3:
        group.attrs["ome"] = {"version": version, "multiscales": [multiscale]}
    else:
        group.attrs["multiscales"] = [{"version": version, **multiscale}]
    return path


@pytest.fixture(scope="session")
def ome_zarr_v3(tmp_path_factory, mosaic) -> tuple[Path, list[np.ndarray]]:
    """NGFF 0.5 on Zarr v3, channel axis first (c, y, x) as the specification orders it."""
    levels = pyramid_of(mosaic)
    path = tmp_path_factory.mktemp("zarr3") / "mosaic.ome.zarr"
    return write_ome_zarr(path, levels, zarr_format=3, channel_first=True), levels


@pytest.fixture(scope="session")
def ome_zarr_v2(tmp_path_factory, mosaic) -> tuple[Path, list[np.ndarray]]:
    """NGFF 0.4 on Zarr v2, channel axis last (y, x, c) as some converters write it."""
    levels = pyramid_of(mosaic)
    path = tmp_path_factory.mktemp("zarr2") / "mosaic.ome.zarr"
    return write_ome_zarr(path, levels, zarr_format=2, channel_first=False), levels
