"""Bad input gives a SlideError that names the file; nothing foreign crashes the reader."""

import os
import shutil

import numpy as np
import pytest
import tifffile

from napari_alma.slides import SlideError, open_slide


def truncated_copy(source, target, fraction):
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


def test_truncated_tiff_names_file(tmp_path, pyramid_tiff):
    path = truncated_copy(pyramid_tiff[0], tmp_path / "cut.tif", 0.6)
    with pytest.raises(SlideError, match="truncated") as caught:
        open_slide(path)
    assert str(path) in str(caught.value)
    assert "Copy the file again" in str(caught.value)


def test_tiff_cut_inside_header(tmp_path, pyramid_tiff):
    path = truncated_copy(pyramid_tiff[0], tmp_path / "header.tif", 0.0001)
    with pytest.raises(SlideError) as caught:
        open_slide(path)
    assert str(path) in str(caught.value)


def test_truncated_jpeg(tmp_path, segpc_jpeg):
    path = truncated_copy(segpc_jpeg, tmp_path / "cut.jpg", 0.5)
    with pytest.raises(SlideError, match="truncated") as caught:
        open_slide(path)
    assert str(path) in str(caught.value)


def test_text_named_tif(tmp_path):
    path = tmp_path / "notes.tif"
    path.write_text("patient notes, not an image\n")
    with pytest.raises(SlideError, match="not a TIFF, JPEG or PNG") as caught:
        open_slide(path)
    assert str(path) in str(caught.value)


def test_missing_file(tmp_path):
    path = tmp_path / "absent.svs"
    with pytest.raises(SlideError, match="does not exist") as caught:
        open_slide(path)
    assert str(path) in str(caught.value)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.touch()
    with pytest.raises(SlideError, match="empty") as caught:
        open_slide(path)
    assert str(path) in str(caught.value)


def test_folder_that_is_not_zarr(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(SlideError, match="not a Zarr store") as caught:
        open_slide(tmp_path)
    assert str(tmp_path) in str(caught.value)


def test_zarr_without_multiscales(tmp_path):
    import zarr

    path = tmp_path / "plain.zarr"
    group = zarr.open_group(path, mode="w")
    group.create_array("0", data=np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(SlideError, match="multiscales") as caught:
        open_slide(path)
    assert str(path) in str(caught.value)


def test_zero_size_image(tmp_path):
    path = tmp_path / "zero.tif"
    with pytest.warns(UserWarning, match="zero-size"):
        tifffile.imwrite(path, np.zeros((0, 16), dtype=np.uint8))
    with pytest.raises(SlideError) as caught:
        open_slide(path)
    assert str(path) in str(caught.value)


def test_slide_error_is_value_error():
    assert issubclass(SlideError, ValueError)


@pytest.mark.parametrize("fixture", ["ome_zarr_v3", "ome_zarr_v2"])
def test_missing_zarr_chunk(tmp_path, request, fixture):
    source = request.getfixturevalue(fixture)[0]
    path = shutil.copytree(source, tmp_path / "copy.ome.zarr")
    chunks = [item for item in (path / "1").rglob("*")
              if item.is_file() and not item.name.startswith(".") and item.name != "zarr.json"]
    chunks[0].unlink()
    with pytest.raises(SlideError, match="chunks of dataset '1' are missing") as caught:
        open_slide(path)
    assert str(path) in str(caught.value)
    assert "Copy the whole OME-Zarr folder again" in str(caught.value)


def test_corrupt_jpeg_tile(tmp_path, mosaic):
    path = tmp_path / "jpeg_tiles.tif"
    tifffile.imwrite(path, mosaic, tile=(256, 256), photometric="rgb", compression="jpeg")
    with tifffile.TiffFile(path) as tif:
        offset, size = tif.pages[0].dataoffsets[1], tif.pages[0].databytecounts[1]
    data = bytearray(path.read_bytes())
    data[offset : offset + size] = b"\x12" * size
    path.write_bytes(bytes(data))
    slide = open_slide(path)
    np.asarray(slide.levels[0][:256, :256])  # an intact tile still reads
    with pytest.raises(SlideError, match="damaged") as caught:
        np.asarray(slide.levels[0][:256, 256:512])
    assert str(path) in str(caught.value)
    assert "rows 0-255, columns 256-511" in str(caught.value)


def png_header_only(path, rows, cols):
    """Write a PNG whose header claims ``rows x cols`` RGB pixels, with no pixel data."""
    import struct
    import zlib

    def chunk(kind, body):
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", cols, rows, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    return path


def test_header_claiming_huge_image(tmp_path):
    path = png_header_only(tmp_path / "huge.png", 10**6, 10**6)
    with pytest.raises(SlideError, match="safety limit") as caught:
        open_slide(path)
    assert str(path) in str(caught.value)
    assert "tiled TIFF or OME-Zarr" in str(caught.value)


def test_unreadable_file(tmp_path, segpc_jpeg, monkeypatch):
    import napari_alma.slides.reader as reader

    path = tmp_path / "locked.jpg"
    path.write_bytes(segpc_jpeg.read_bytes())

    def denied(file, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(file))

    # Root reads any file whatever its mode, so the denial is simulated.
    monkeypatch.setattr(reader, "open", denied, raising=False)
    with pytest.raises(SlideError, match="permission denied") as caught:
        open_slide(path)
    assert str(path) in str(caught.value)
    assert "read access" in str(caught.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_mode(tmp_path, segpc_jpeg):
    path = tmp_path / "locked.jpg"
    path.write_bytes(segpc_jpeg.read_bytes())
    path.chmod(0)
    with pytest.raises(SlideError, match="permission denied") as caught:
        open_slide(path)
    assert str(path) in str(caught.value)


def test_non_ascii_paths(tmp_path, segpc_jpeg, pyramid_tiff, ome_zarr_v3):
    folder = tmp_path / "médula ósea" / "frotis_ñ_α"
    folder.mkdir(parents=True)
    for source, name in ((segpc_jpeg, "campo_ñ.jpg"), (pyramid_tiff[0], "pirámide.tif")):
        target = folder / name
        target.write_bytes(source.read_bytes())
        with open_slide(target) as slide:
            assert slide.path == target
    zarr_copy = shutil.copytree(ome_zarr_v3[0], folder / "aspirado_µ.ome.zarr")
    assert open_slide(zarr_copy).shape == ome_zarr_v3[1][0].shape[:2]


def test_non_ascii_path_in_error(tmp_path, segpc_jpeg):
    path = truncated_copy(segpc_jpeg, tmp_path / "médula_ósea.jpg", 0.5)
    with pytest.raises(SlideError) as caught:
        open_slide(path)
    assert "médula_ósea.jpg" in str(caught.value)


def test_reader_error_in_spanish(tmp_path, pyramid_tiff, monkeypatch):
    from napari_alma.slides.napari_reader import read_slides

    monkeypatch.setenv("ALMA_LANG", "es")
    path = truncated_copy(pyramid_tiff[0], tmp_path / "cut.tif", 0.6)
    with pytest.raises(SlideError, match="no pudo abrir esta preparación") as caught:
        read_slides(str(path))
    assert str(path) in str(caught.value)
    assert caught.value.path == path
