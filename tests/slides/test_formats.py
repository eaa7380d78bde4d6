"""Vendor layouts, focal planes, alpha, 16-bit and non-integer downsamples.

No real NDPI or Philips file is in the test data, so these tests write the closest
structure tifffile can: the tags and page order that tifffile uses to recognise each
vendor. The pixels are derived from the real SegPC mosaic of conftest. The pyramid levels
subsample it, and the label, macro and extra focal-plane pages are crops or inverses of it.
"""

import numpy as np
import pytest
import tifffile
import zarr
from numpy.testing import assert_array_equal

from napari_alma.slides import open_slide

TILE = {"tile": (256, 256), "photometric": "rgb", "metadata": None, "software": False}


def ndpi_tags(magnification, z_offset=0):
    """Hamamatsu NDPI private tags: file format, magnification, focal-plane offset (nm)."""
    return [
        (271, "s", 0, "Hamamatsu", True),
        (65420, "I", 1, 1, True),
        (65421, "f", 1, magnification, True),
        (65422, "i", 1, z_offset, True),
    ]


def write_ndpi_like(path, image, macro):
    """Write three levels with two focal planes each, then a macro page, as NDPI does."""
    with tifffile.TiffWriter(path) as writer:
        for level in range(3):
            pixels = image[:: 2**level, :: 2**level]
            for z_offset, plane in ((0, pixels), (1000, 255 - pixels)):
                writer.write(plane, extratags=ndpi_tags(40.0, z_offset),
                             resolution=(4e4, 4e4), resolutionunit="CENTIMETER", **TILE)
        writer.write(macro, extratags=ndpi_tags(-1.0), photometric="rgb", metadata=None,
                     software=False)
    return path


def test_ndpi_like_levels(tmp_path, mosaic):
    path = write_ndpi_like(tmp_path / "slide.ndpi.tif", mosaic, mosaic[:300, :900])
    with open_slide(path) as slide:
        assert slide.format == "ndpi"
        assert slide.mpp == pytest.approx(0.25)
        assert len(slide.levels) == 3
        for level in range(3):
            assert_array_equal(np.asarray(slide.levels[level]),
                               mosaic[:: 2**level, :: 2**level])


@pytest.mark.parametrize("suffix", [".ndpi", ".scn", ".bif"])
def test_napari_reader_takes_vendor_names(tmp_path, mosaic, suffix):
    from napari_alma.slides.napari_reader import napari_get_reader, read_slides

    # tifffile reads a file named .ndpi with NDPI's 64-bit offsets, which its writer
    # cannot produce, so only the cheap check is run on these names.
    path = write_ndpi_like(tmp_path / f"slide{suffix}", mosaic, mosaic[:300, :900])
    assert napari_get_reader(str(path)) is read_slides


def test_ndpi_nominal_focal_plane(tmp_path, mosaic):
    path = tmp_path / "stack.tif"
    planes = {-1000: 255 - mosaic, 0: mosaic, 1000: mosaic // 2}
    with tifffile.TiffWriter(path) as writer:
        for level in range(2):
            for z_offset, plane in planes.items():
                writer.write(plane[:: 2**level, :: 2**level],
                             extratags=ndpi_tags(40.0, z_offset), **TILE)
    with open_slide(path) as slide:
        for level in range(2):
            assert_array_equal(np.asarray(slide.levels[level]),
                               mosaic[:: 2**level, :: 2**level])


def test_ndpi_macro_never_a_level(tmp_path, mosaic):
    # A macro page whose size happens to be an exact reduction of the pyramid.
    path = write_ndpi_like(tmp_path / "slide.ndpi.tif", mosaic, mosaic[::8, ::8])
    with open_slide(path) as slide:
        assert len(slide.levels) == 3
        assert "Macro" in slide.private_metadata["associated_images"]


def philips_xml(spacings_mm):
    representations = "".join(
        '<DataObject ObjectType="PixelDataRepresentation">'
        f'<Attribute Name="DICOM_PIXEL_SPACING">"{s}" "{s}"</Attribute></DataObject>'
        for s in spacings_mm
    )
    return (
        '<?xml version="1.0" encoding="UTF-8" ?>\n'
        '<DataObject ObjectType="DPUfsImport">'
        '<Attribute Name="PIM_DP_UFS_BARCODE">UEFUSUVOVC0wMDQy</Attribute>'
        '<Attribute Name="PIM_DP_SCANNED_IMAGES"><Array>'
        '<DataObject ObjectType="DPScannedImage">'
        '<Attribute Name="PIIM_PIXEL_DATA_REPRESENTATION_SEQUENCE"><Array>'
        f"{representations}</Array></Attribute></DataObject></Array></Attribute>"
        "</DataObject>"
    )


def test_philips_like_levels(tmp_path, mosaic):
    image = mosaic[:1532, :4076]  # sides divisible by 4: Philips level sizes are floors
    levels = [image[:: 2**k, :: 2**k] for k in range(3)]
    path = tmp_path / "slide.tiff"
    with tifffile.TiffWriter(path) as writer:
        for index, level in enumerate(levels):
            # Philips pads every reduced level to whole tiles.
            padded = np.zeros((-(-level.shape[0] // 256) * 256, -(-level.shape[1] // 256) * 256,
                               3), np.uint8)
            padded[: level.shape[0], : level.shape[1]] = level
            description = philips_xml([0.00025 * 2**k for k in range(3)]) if index == 0 else ""
            writer.write(padded if index else level, description=description, **TILE,
                         extratags=[(305, "s", 0, "Philips DP v1.0", True)])
        writer.write(image[:64, :64], description="Label", photometric="rgb", metadata=None)
        writer.write(image[:96, :192], description="Macro", photometric="rgb", metadata=None)
    with open_slide(path) as slide:
        assert slide.format == "philips-tiff"
        assert slide.mpp == pytest.approx(0.25)
        assert [level.shape for level in slide.levels] == [level.shape for level in levels]
        assert_array_equal(np.asarray(slide.levels[2]), levels[2])
        assert set(slide.private_metadata["associated_images"]) == {"Label", "Macro"}
        assert "UEFUSUVOVC0wMDQy" not in str(slide.metadata)


def test_ome_tiff_focal_planes_first(tmp_path, mosaic):
    path = tmp_path / "stack.ome.tif"
    stack = np.stack([mosaic, 255 - mosaic])  # (z, rows, cols, 3)
    with tifffile.TiffWriter(path, ome=True) as writer:
        writer.write(stack, subifds=1, tile=(256, 256), photometric="rgb",
                     metadata={"axes": "ZYXS"})
        writer.write(stack[:, ::2, ::2], subfiletype=1, tile=(256, 256), photometric="rgb")
    with open_slide(path) as slide:
        assert slide.levels[0].shape == mosaic.shape
        assert_array_equal(np.asarray(slide.levels[1]), mosaic[::2, ::2])


def test_ngff_extra_axes_first_plane(tmp_path, mosaic):
    crop = mosaic[:600, :800]
    data = np.stack([np.moveaxis(crop, -1, 0), np.moveaxis(255 - crop, -1, 0)], axis=1)
    path = tmp_path / "tczyx.ome.zarr"
    group = zarr.open_group(path, mode="w", zarr_format=3)
    group.create_array("0", data=data[np.newaxis])  # (t, c, z, y, x)
    axes = [{"name": "t", "type": "time"}, {"name": "c", "type": "channel"},
            {"name": "z", "type": "space"}, {"name": "y", "type": "space"},
            {"name": "x", "type": "space"}]
    dataset = {"path": "0", "coordinateTransformations": [{"type": "scale",
                                                           "scale": [1, 1, 1, 1, 1]}]}
    group.attrs["ome"] = {"version": "0.5",
                          "multiscales": [{"axes": axes, "datasets": [dataset]}]}
    with open_slide(path) as slide:
        assert_array_equal(np.asarray(slide.levels[0]), crop)


def test_rgba_tiff_drops_alpha(tmp_path, mosaic):
    alpha = np.full(mosaic.shape[:2] + (1,), 255, np.uint8)
    rgba = np.concatenate([mosaic, alpha], axis=2)
    path = tmp_path / "rgba.tif"
    with tifffile.TiffWriter(path) as writer:
        writer.write(rgba, subifds=1, tile=(256, 256), photometric="rgb",
                     extrasamples="unassalpha")
        writer.write(rgba[::2, ::2], subfiletype=1, tile=(256, 256), photometric="rgb",
                     extrasamples="unassalpha")
    with open_slide(path) as slide:
        assert slide.levels[0].shape == mosaic.shape
        assert_array_equal(np.asarray(slide.levels[1]), mosaic[::2, ::2])


def test_rgb_16bit_kept_and_scaled(tmp_path, mosaic):
    image = mosaic.astype(np.uint16) * 16  # 12-bit camera values in 16-bit words
    path = tmp_path / "rgb16.tif"
    tifffile.imwrite(path, image, tile=(256, 256), photometric="rgb")
    with open_slide(path) as slide:
        assert slide.levels[0].dtype == np.uint16
        assert_array_equal(np.asarray(slide.levels[0][:8, :8]), image[:8, :8])
        region = slide.read_region(0, 0, 64, 64)
    assert region.dtype == np.uint8
    expected = np.rint(image[:64, :64] * (255.0 / image.max())).astype(np.uint8)
    assert np.abs(region.astype(int) - expected).max() <= 1


@pytest.mark.parametrize("factor", [1.5, 3.0])
def test_non_integer_and_odd_downsample(tmp_path, mosaic, factor):
    rows, cols = (int(round(side / factor)) for side in mosaic.shape[:2])
    row_index = np.minimum((np.arange(rows) * factor).astype(int), mosaic.shape[0] - 1)
    col_index = np.minimum((np.arange(cols) * factor).astype(int), mosaic.shape[1] - 1)
    reduced = mosaic[row_index][:, col_index]
    path = tmp_path / "factor.tif"
    with tifffile.TiffWriter(path) as writer:
        writer.write(mosaic, subifds=1, tile=(256, 256), photometric="rgb")
        writer.write(reduced, subfiletype=1, tile=(256, 256), photometric="rgb")
    with open_slide(path) as slide:
        scale, translate = slide.level_scale_translate(1)
        assert_array_equal(np.asarray(slide.levels[1]), reduced)
        region = slide.read_region(300, 300, 600, 600, level=1)
    np.testing.assert_allclose(scale, (mosaic.shape[0] / rows, mosaic.shape[1] / cols))
    np.testing.assert_allclose(translate, (scale - 1) / 2)
    first = int(np.floor(300 / scale[0])), int(np.floor(300 / scale[1]))
    assert_array_equal(region[0, 0], reduced[first])
