"""open_slide on real JPEG fields and on pyramids derived from real SegPC fields."""

import dask.array as da
import numpy as np
import pytest
import tifffile
from numpy.testing import assert_allclose, assert_array_equal
from PIL import Image, ImageOps

from napari_alma.slides import Slide, open_slide
from napari_alma.slides.pyramid import MAX_COARSEST_SIDE, OVERVIEW_SIDE


def test_bccd_jpeg_field(bccd_jpeg):
    slide = open_slide(bccd_jpeg)
    expected = np.asarray(Image.open(bccd_jpeg))
    assert slide.format == "jpeg"
    assert slide.shape == (480, 640)
    assert len(slide.levels) == 1
    assert isinstance(slide.levels[0], da.Array)
    assert slide.levels[0].dtype == np.uint8
    assert_array_equal(slide.levels[0].compute(), expected)
    assert slide.mpp is None  # BCCD JPEGs carry only a JFIF aspect ratio


def test_segpc_jpeg_field(segpc_jpeg):
    slide = open_slide(segpc_jpeg)
    expected = np.asarray(Image.open(segpc_jpeg))
    assert slide.format == "jpeg"
    assert slide.shape == (1536, 2040)
    assert slide.rgb
    assert slide.downsamples == [1.0]
    assert_array_equal(slide.read_region(100, 200, 300, 500), expected[100:300, 200:500])


def test_jpeg_exif_orientation_applied(tmp_path, bccd_jpeg):
    path = tmp_path / "rotated.jpg"
    image = Image.open(bccd_jpeg)
    exif = image.getexif()
    exif[0x0112] = 6  # stored rotated: displayed after a 90 degree clockwise turn
    image.save(path, exif=exif, quality=95)

    slide = open_slide(path)
    stored = np.asarray(Image.open(path))
    assert slide.shape == (640, 480)
    assert slide.metadata["exif_orientation"] == 6
    assert_array_equal(slide.levels[0].compute(), np.rot90(stored, k=-1))
    shown = ImageOps.exif_transpose(Image.open(path))
    assert_array_equal(slide.levels[0].compute(), np.asarray(shown))


def test_pyramid_tiff_levels(pyramid_tiff):
    path, written = pyramid_tiff
    with open_slide(path) as slide:
        assert slide.format == "tiff"
        assert slide.shape == (1535, 4079)
        assert [level.shape for level in slide.levels] == [level.shape for level in written]
        for level, expected in zip(slide.levels, written, strict=True):
            assert_array_equal(level.compute(), expected)


def test_pyramid_tiff_downsamples(pyramid_tiff):
    path, _ = pyramid_tiff
    with open_slide(path) as slide:
        assert slide.downsamples == [1.0, 1535 / 768, 1535 / 384]
        assert_allclose(slide.level_scale_translate(0)[0], [1.0, 1.0])
        assert_allclose(slide.level_scale_translate(0)[1], [0.0, 0.0])
        scale, translate = slide.level_scale_translate(2)
        assert_allclose(scale, [1535 / 384, 4079 / 1020])
        assert_allclose(translate, (scale - 1) / 2)


def test_pyramid_tiff_mpp_from_resolution(pyramid_tiff, derived_mpp):
    path, _ = pyramid_tiff
    with open_slide(path) as slide:
        assert slide.mpp == pytest.approx(derived_mpp)
        assert slide.metadata["tile_shape"] == [256, 256]


def test_level_centres_line_up(pyramid_tiff):
    # Level 1 pixel i averages level-0 pixels 2i and 2i + 1, whose centre is 2i + 0.5.
    path, _ = pyramid_tiff
    with open_slide(path) as slide:
        scale, translate = slide.level_scale_translate(1)
        centre = 10 * scale + translate
        assert_allclose(centre, [20.5, 20.5], atol=0.02)


def test_read_region_inside(pyramid_tiff):
    path, written = pyramid_tiff
    with open_slide(path) as slide:
        region = slide.read_region(100, 200, 164, 300)
        assert region.dtype == np.uint8
        assert_array_equal(region, written[0][100:164, 200:300])


def test_read_region_clipped_at_top_left(pyramid_tiff):
    path, written = pyramid_tiff
    with open_slide(path) as slide:
        region = slide.read_region(-50, -20, 30, 40)
        assert region.shape == (30, 40, 3)
        assert_array_equal(region, written[0][:30, :40])


def test_read_region_clipped_at_bottom_right(pyramid_tiff):
    path, written = pyramid_tiff
    with open_slide(path) as slide:
        region = slide.read_region(1500, 4000, 1600, 4200)
        assert region.shape == (35, 79, 3)
        assert_array_equal(region, written[0][1500:, 4000:])


def test_read_region_on_coarse_level(pyramid_tiff):
    path, written = pyramid_tiff
    with open_slide(path) as slide:
        region = slide.read_region(1500, 4000, 1600, 4200, level=1)
        d_rows, d_cols = slide.level_scale_translate(1)[0]
        first_row, first_col = int(1500 // d_rows), int(4000 // d_cols)
        assert region.shape == (768 - first_row, 2040 - first_col, 3)
        assert_array_equal(region, written[1][first_row:, first_col:])


def test_read_region_outside_is_empty(pyramid_tiff):
    path, _ = pyramid_tiff
    with open_slide(path) as slide:
        assert slide.read_region(2000, 0, 2100, 50).shape == (0, 50, 3)
        assert slide.read_region(-100, -100, -10, -10).shape == (0, 0, 3)


def test_read_region_rejects_reversed_rectangle(pyramid_tiff):
    path, _ = pyramid_tiff
    with open_slide(path) as slide, pytest.raises(ValueError, match="before the start"):
        slide.read_region(100, 0, 50, 10)


def test_read_region_rejects_missing_level(pyramid_tiff):
    path, _ = pyramid_tiff
    with open_slide(path) as slide, pytest.raises(ValueError, match="levels 0 to 2"):
        slide.read_region(0, 0, 10, 10, level=3)


def test_open_reads_no_tile_data(pyramid_tiff, monkeypatch):
    path, _ = pyramid_tiff
    bytes_read = []
    original_read = tifffile.FileHandle.read

    def counting_read(self, size=-1):
        data = original_read(self, size)
        bytes_read.append(len(data))
        return data

    monkeypatch.setattr(tifffile.FileHandle, "read", counting_read)
    with open_slide(path):
        pass
    assert sum(bytes_read) < path.stat().st_size / 100


def test_svs_levels_skip_thumbnail_label_macro(svs_like):
    path, written = svs_like
    with open_slide(path) as slide:
        assert slide.format == "svs"
        assert [level.shape for level in slide.levels] == [level.shape for level in written]
        assert_array_equal(slide.levels[1].compute(), written[1])


def test_svs_mpp_and_private_fields(svs_like, derived_mpp):
    path, _ = svs_like
    with open_slide(path) as slide:
        assert slide.mpp == pytest.approx(derived_mpp)
        assert slide.metadata["AppMag"] == 40
        for private in ("Filename", "Date", "User"):
            assert private not in slide.metadata
            assert private in slide.private_metadata
        assert slide.private_metadata["Filename"] == "patient-0042"


@pytest.mark.parametrize("fixture", ["ome_zarr_v3", "ome_zarr_v2"])
def test_ome_zarr_levels(request, fixture):
    path, written = request.getfixturevalue(fixture)
    slide = open_slide(path)
    assert slide.format == "ome-zarr"
    assert [level.shape for level in slide.levels] == [level.shape for level in written]
    for level, expected in zip(slide.levels, written, strict=True):
        assert_array_equal(level.compute(), expected)


@pytest.mark.parametrize(
    ("fixture", "zarr_format", "version"),
    [("ome_zarr_v3", 3, "0.5"), ("ome_zarr_v2", 2, "0.4")],
)
def test_ome_zarr_metadata(request, fixture, zarr_format, version, derived_mpp):
    path, _ = request.getfixturevalue(fixture)
    slide = open_slide(path)
    assert slide.mpp == pytest.approx(derived_mpp)
    assert slide.metadata["zarr_format"] == zarr_format
    assert slide.metadata["ngff_version"] == version
    assert slide.downsamples == [1.0, 1535 / 768, 1535 / 384]


def test_single_large_level_gets_overview(tmp_path, wide_mosaic):
    path = tmp_path / "wide.tif"
    tifffile.imwrite(path, wide_mosaic, photometric="rgb")  # stripped, one level
    with open_slide(path) as slide:
        shapes = [level.shape[:2] for level in slide.levels]
        assert max(wide_mosaic.shape[:2]) > MAX_COARSEST_SIDE
        assert shapes == [(1536, 6120), (768, 3060), (384, 1530), (192, 765)]
        assert max(shapes[-1]) <= OVERVIEW_SIDE
        assert slide.levels[1].dtype == np.uint8


def test_overview_level_is_block_mean(tmp_path, wide_mosaic):
    path = tmp_path / "wide.tif"
    tifffile.imwrite(path, wide_mosaic, photometric="rgb")
    with open_slide(path) as slide:
        blocks = wide_mosaic[:64, :128].reshape(16, 4, 32, 4, 3).astype(np.float64)
        expected = np.rint(blocks.mean(axis=(1, 3))).astype(np.uint8)
        assert_array_equal(slide.levels[2][:16, :32].compute(), expected)


def test_small_single_level_gets_no_overview(segpc_jpeg):
    assert len(open_slide(segpc_jpeg).levels) == 1


def test_grey_16bit_tiff_kept(tmp_path, mosaic):
    path = tmp_path / "grey16.tif"
    grey = mosaic[:, :, 1].astype(np.uint16) * 257
    tifffile.imwrite(path, grey)
    with open_slide(path) as slide:
        assert slide.levels[0].shape == grey.shape
        assert slide.levels[0].dtype == np.uint16
        assert not slide.rgb
        assert_array_equal(slide.levels[0][:50, :50].compute(), grey[:50, :50])


def test_grey_region_becomes_rgb_uint8(tmp_path, mosaic):
    path = tmp_path / "grey16.tif"
    grey = mosaic[:, :, 1].astype(np.uint16) * 257
    tifffile.imwrite(path, grey)
    with open_slide(path) as slide:
        region = slide.read_region(0, 0, 20, 30)
        scale = 255.0 / grey.max()
        expected = np.rint(grey[:20, :30] * scale).astype(np.uint8)
        assert region.shape == (20, 30, 3)
        assert region.dtype == np.uint8
        for channel in range(3):
            assert_array_equal(region[:, :, channel], expected)


def test_rgba_png_becomes_rgb(tmp_path, mosaic):
    path = tmp_path / "rgba.png"
    rgb = mosaic[:200, :300]
    alpha = np.full(rgb.shape[:2] + (1,), 128, dtype=np.uint8)
    Image.fromarray(np.concatenate([rgb, alpha], axis=2), mode="RGBA").save(path)
    slide = open_slide(path)
    assert slide.format == "png"
    assert slide.levels[0].shape == (200, 300, 3)
    assert_array_equal(slide.levels[0].compute(), rgb)


def test_grey_jpeg_stays_2d(tmp_path, mosaic):
    path = tmp_path / "grey.jpg"
    Image.fromarray(mosaic[:200, :300, 1]).save(path, quality=95)
    slide = open_slide(path)
    assert slide.levels[0].shape == (200, 300)
    assert slide.levels[0].dtype == np.uint8


def test_16bit_rgb_png_kept(tmp_path, mosaic):
    import imagecodecs

    path = tmp_path / "rgb16.png"
    rgb16 = mosaic[:100, :120].astype(np.uint16) * 257
    path.write_bytes(imagecodecs.png_encode(rgb16))
    slide = open_slide(path)
    assert slide.levels[0].dtype == np.uint16
    assert_array_equal(slide.levels[0].compute(), rgb16)


def test_png_dpi_gives_mpp(tmp_path, mosaic, derived_mpp):
    path = tmp_path / "field.png"
    Image.fromarray(mosaic[:100, :100]).save(path, dpi=(25400 / derived_mpp, 25400 / derived_mpp))
    assert open_slide(path).mpp == pytest.approx(derived_mpp, rel=1e-3)


def test_implausible_resolution_ignored(tmp_path, mosaic):
    path = tmp_path / "screen.tif"
    tifffile.imwrite(
        path, mosaic[:100, :100], photometric="rgb", resolution=(72, 72), resolutionunit="INCH"
    )
    with open_slide(path) as slide:
        assert slide.mpp is None  # 72 dpi is about 353 µm/px


def test_pages_without_subifds_are_levels(tmp_path, mosaic):
    path = tmp_path / "pages.tif"
    levels = [mosaic, mosaic[::2, ::2], mosaic[::4, ::4]]
    with tifffile.TiffWriter(path) as writer:
        for level in levels:
            writer.write(level, tile=(256, 256), photometric="rgb")
    with open_slide(path) as slide:
        assert [level.shape for level in slide.levels] == [level.shape for level in levels]
        assert_array_equal(slide.levels[2].compute(), levels[2])


def test_slide_is_a_dataclass_with_path(segpc_jpeg):
    slide = open_slide(str(segpc_jpeg))
    assert isinstance(slide, Slide)
    assert slide.path == segpc_jpeg


def test_ome_tiff_pyramid_and_physical_size(tmp_path, mosaic, derived_mpp):
    path = tmp_path / "mosaic.ome.tif"
    levels = [mosaic, mosaic[::2, ::2]]
    metadata = {"axes": "YXS", "PhysicalSizeX": derived_mpp, "PhysicalSizeXUnit": "µm"}
    with tifffile.TiffWriter(path, ome=True) as writer:
        writer.write(levels[0], subifds=1, tile=(256, 256), photometric="rgb", metadata=metadata)
        writer.write(levels[1], subfiletype=1, tile=(256, 256), photometric="rgb")
    with open_slide(path) as slide:
        assert slide.format == "ome-tiff"
        assert slide.mpp == pytest.approx(derived_mpp)
        assert [level.shape for level in slide.levels] == [level.shape for level in levels]
        assert_array_equal(slide.levels[1].compute(), levels[1])


def test_planar_rgb_tiff_to_channels_last(tmp_path, mosaic):
    path = tmp_path / "planar.tif"
    planes = np.moveaxis(mosaic[:300, :400], -1, 0)  # (3, rows, cols)
    tifffile.imwrite(path, planes, photometric="rgb", planarconfig="separate")
    with open_slide(path) as slide:
        assert slide.levels[0].shape == (300, 400, 3)
        assert_array_equal(slide.levels[0].compute(), mosaic[:300, :400])
