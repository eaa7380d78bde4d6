"""fingerprint: content-based, independent of the name, cheap for large files."""

import shutil

import pytest

from napari_alma.slides import SlideError, fingerprint
from napari_alma.slides.fingerprint import EDGE_BYTES


def test_fingerprint_ignores_name(tmp_path, segpc_jpeg):
    copy = tmp_path / "renamed.jpg"
    shutil.copyfile(segpc_jpeg, copy)
    assert fingerprint(copy) == fingerprint(segpc_jpeg)


def test_fingerprint_differs_between_fields(segpc_jpeg, bccd_jpeg):
    assert fingerprint(segpc_jpeg) != fingerprint(bccd_jpeg)
    assert len(fingerprint(segpc_jpeg)) == 64


def test_fingerprint_sees_change_at_end(tmp_path, pyramid_tiff):
    data = bytearray(pyramid_tiff[0].read_bytes())
    assert len(data) > 2 * EDGE_BYTES
    data[-10] ^= 0xFF
    changed = tmp_path / "changed.tif"
    changed.write_bytes(bytes(data))
    assert fingerprint(changed) != fingerprint(pyramid_tiff[0])


def test_fingerprint_zarr_ignores_hidden_files(tmp_path, ome_zarr_v3):
    copy = tmp_path / "copy.ome.zarr"
    shutil.copytree(ome_zarr_v3[0], copy)
    (copy / ".DS_Store").write_bytes(b"finder")
    assert fingerprint(copy) == fingerprint(ome_zarr_v3[0])


def test_fingerprint_zarr_sees_metadata_change(tmp_path, ome_zarr_v3):
    copy = tmp_path / "copy.ome.zarr"
    shutil.copytree(ome_zarr_v3[0], copy)
    metadata = copy / "zarr.json"
    metadata.write_text(metadata.read_text().replace("mosaic", "other"))
    assert fingerprint(copy) != fingerprint(ome_zarr_v3[0])


def test_fingerprint_v2_and_v3_differ(ome_zarr_v2, ome_zarr_v3):
    assert fingerprint(ome_zarr_v2[0]) != fingerprint(ome_zarr_v3[0])


def test_fingerprint_missing_path(tmp_path):
    with pytest.raises(SlideError, match="absent.tif"):
        fingerprint(tmp_path / "absent.tif")


def test_fingerprint_foreign_folder(tmp_path):
    with pytest.raises(SlideError, match="not a Zarr store"):
        fingerprint(tmp_path)
