"""napari_get_reader: which paths it takes and the layer data it returns."""

import subprocess
import sys

import dask.array as da
import numpy as np
import pytest

from napari_alma.slides import SlideError, fingerprint
from napari_alma.slides.napari_reader import display_name, napari_get_reader


def test_reader_layer_for_pyramid(pyramid_tiff, derived_mpp):
    path, written = pyramid_tiff
    reader = napari_get_reader(str(path))
    assert callable(reader)
    [(data, kwargs, layer_type)] = reader(str(path))
    assert layer_type == "image"
    assert isinstance(data, list)
    assert [level.shape for level in data] == [level.shape for level in written]
    assert all(isinstance(level, da.Array) for level in data)
    assert kwargs["multiscale"] is True
    assert kwargs["rgb"] is True
    assert kwargs["scale"] == pytest.approx((derived_mpp, derived_mpp))
    assert kwargs["name"] == "mosaic_pyramid"


def test_reader_metadata(pyramid_tiff, derived_mpp):
    path, _ = pyramid_tiff
    [(_, kwargs, _)] = napari_get_reader(str(path))(str(path))
    info = kwargs["metadata"]["napari_alma"]
    assert info["path"] == str(path)
    assert info["mpp"] == pytest.approx(derived_mpp)
    assert info["format"] == "tiff"
    assert info["fingerprint"] == fingerprint(path)


def test_reader_single_level_jpeg(segpc_jpeg):
    [(data, kwargs, _)] = napari_get_reader(str(segpc_jpeg))(str(segpc_jpeg))
    assert isinstance(data, da.Array)
    assert data.shape == (1536, 2040, 3)
    assert kwargs["multiscale"] is False
    assert "scale" not in kwargs
    assert kwargs["name"] == "1991"


def test_reader_ome_zarr_folder(ome_zarr_v3):
    path, _ = ome_zarr_v3
    [(data, kwargs, _)] = napari_get_reader(str(path))(str(path))
    assert len(data) == 3
    assert kwargs["name"] == "mosaic"
    assert kwargs["metadata"]["napari_alma"]["format"] == "ome-zarr"


def test_reader_list_of_paths(segpc_jpeg, bccd_jpeg):
    paths = [str(segpc_jpeg), str(bccd_jpeg)]
    layers = napari_get_reader(paths)(paths)
    assert [kwargs["name"] for _, kwargs, _ in layers] == ["1991", "BloodImage_00000"]


def test_reader_none_for_text_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    assert napari_get_reader(str(path)) is None


def test_reader_none_for_text_named_tif(tmp_path):
    path = tmp_path / "notes.tif"
    path.write_text("hello")
    assert napari_get_reader(str(path)) is None


def test_reader_none_for_foreign_folder(tmp_path):
    (tmp_path / "a.csv").write_text("1,2\n")
    assert napari_get_reader(str(tmp_path)) is None


def test_reader_none_for_plain_zarr(tmp_path):
    import zarr

    path = tmp_path / "plain.zarr"
    zarr.open_group(path, mode="w").create_array("0", data=np.zeros((4, 4), np.uint8))
    assert napari_get_reader(str(path)) is None


def test_reader_none_for_mixed_list(tmp_path, segpc_jpeg):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert napari_get_reader([str(segpc_jpeg), str(text)]) is None
    assert napari_get_reader([]) is None


def test_reader_none_for_missing_path(tmp_path):
    assert napari_get_reader(str(tmp_path / "absent.tif")) is None


def test_reader_raises_for_truncated_tiff(tmp_path, pyramid_tiff):
    path = tmp_path / "cut.tif"
    path.write_bytes(pyramid_tiff[0].read_bytes()[:100_000])
    reader = napari_get_reader(str(path))
    with pytest.raises(SlideError, match="cut.tif"):
        reader(str(path))


def test_display_name_strips_format_endings(tmp_path):
    assert display_name(tmp_path / "case1.ome.tif") == "case1"
    assert display_name(tmp_path / "case1.ome.zarr") == "case1"
    assert display_name(tmp_path / "case1.svs") == "case1"
    assert display_name(tmp_path / "folder") == "folder"


def test_reader_import_is_light():
    # npe2 imports this module when napari starts, so heavy libraries wait for a slide.
    code = (
        "import sys, napari_alma.slides.napari_reader; "
        "print(sorted(m for m in ('napari', 'dask', 'tifffile', 'zarr', 'PIL', 'torch') "
        "if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_reader_none_for_non_path():
    assert napari_get_reader([None]) is None
    assert napari_get_reader("bad\0name.tif") is None
