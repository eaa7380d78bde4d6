"""Bad input gives a SlideError that names the file; nothing foreign crashes the reader."""

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
