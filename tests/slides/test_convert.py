"""Conversion to OME-Zarr NGFF 0.5, read back level by level.

The sources are pyramids derived from real SegPC fields (see conftest). napari-ome-zarr
is not installed in the test environment, so the NGFF 0.5 metadata is checked here field
by field against the specification (https://ngff.openmicroscopy.org/0.5/).
"""

import json

import numpy as np
import pytest
import zarr

from napari_alma.slides import open_slide
from napari_alma.slides.convert import (
    CHUNK_SIDE,
    COARSEST_MAX_SIDE,
    convert_to_ome_zarr,
    planned_shapes,
)

SPACE_UNITS = {"micrometer", "nanometer", "millimeter", "meter", "angstrom"}


@pytest.fixture(scope="module")
def converted(tmp_path_factory, pyramid_tiff):
    target = tmp_path_factory.mktemp("convert") / "mosaic.ome.zarr"
    fractions = []
    result = convert_to_ome_zarr(pyramid_tiff[0], target,
                                 progress=lambda fraction, _: fractions.append(fraction))
    return target, result, fractions


def root_attributes(path):
    return json.loads((path / "zarr.json").read_text(encoding="utf-8"))


def test_levels_keep_pixels(converted, pyramid_tiff):
    target, _, _ = converted
    with open_slide(target) as slide:
        for index, expected in enumerate(pyramid_tiff[1]):
            np.testing.assert_array_equal(np.asarray(slide.levels[index]), expected)


def test_extra_level_is_block_mean(converted, pyramid_tiff):
    target, _, _ = converted
    coarsest = pyramid_tiff[1][-1].astype(np.float64)
    rows, cols = coarsest.shape[0] // 2 * 2, coarsest.shape[1] // 2 * 2
    blocks = coarsest[:rows, :cols].reshape(rows // 2, 2, cols // 2, 2, 3)
    expected = np.rint(blocks.mean(axis=(1, 3))).astype(np.uint8)
    with open_slide(target) as slide:
        assert len(slide.levels) == len(pyramid_tiff[1]) + 1
        np.testing.assert_array_equal(np.asarray(slide.levels[-1]), expected)


def test_geometry_matches_source(converted, pyramid_tiff):
    target, _, _ = converted
    with open_slide(pyramid_tiff[0]) as source, open_slide(target) as copy:
        assert copy.mpp == pytest.approx(source.mpp)
        for level in range(len(source.levels)):
            for before, after in zip(source.level_scale_translate(level),
                                     copy.level_scale_translate(level)):
                np.testing.assert_allclose(after, before)


def test_transforms_in_micrometres(converted, derived_mpp):
    target, result, _ = converted
    multiscale = root_attributes(target)["attributes"]["ome"]["multiscales"][0]
    level0 = result["levels"][0]
    for dataset, (rows, cols) in zip(multiscale["datasets"], result["levels"]):
        scale, translation = dataset["coordinateTransformations"]
        downsample = np.array([level0[0] / rows, level0[1] / cols])
        np.testing.assert_allclose(scale["scale"][1:], derived_mpp * downsample)
        np.testing.assert_allclose(translation["translation"][1:],
                                   derived_mpp * (downsample - 1) / 2)


def test_metadata_is_valid_ngff_05(converted):
    target, result, _ = converted
    document = root_attributes(target)
    assert document["zarr_format"] == 3
    assert document["node_type"] == "group"
    ome = document["attributes"]["ome"]
    assert ome["version"] == "0.5"
    multiscale = ome["multiscales"][0]
    axes = multiscale["axes"]
    names = [axis["name"] for axis in axes]
    assert len(set(names)) == len(names)
    assert 2 <= len(axes) <= 5
    assert [axis["type"] for axis in axes] == ["channel", "space", "space"]
    assert all(axis["unit"] in SPACE_UNITS for axis in axes if axis["type"] == "space")
    sizes = []
    for dataset in multiscale["datasets"]:
        transforms = dataset["coordinateTransformations"]
        assert transforms[0]["type"] == "scale"
        assert [t["type"] for t in transforms[1:]] in ([], ["translation"])
        assert all(len(t.get("scale", t.get("translation"))) == len(axes) for t in transforms)
        array = json.loads((target / dataset["path"] / "zarr.json").read_text("utf-8"))
        assert array["node_type"] == "array"
        assert array["dimension_names"] == names
        assert len(array["shape"]) == len(axes)
        sizes.append(array["shape"][1] * array["shape"][2])
    assert sizes == sorted(sizes, reverse=True)


def test_chunks_and_compression(converted):
    target, _, _ = converted
    group = zarr.open_group(target, mode="r")
    array = group["0"]
    assert array.chunks == (3, CHUNK_SIDE, CHUNK_SIDE)
    assert array.compressors
    assert array.metadata.zarr_format == 3


def test_progress_reaches_one(converted):
    _, _, fractions = converted
    assert fractions == sorted(fractions)
    assert fractions[-1] == pytest.approx(1.0)


def test_private_fields_left_out(tmp_path, svs_like):
    target = convert_to_ome_zarr(svs_like[0], tmp_path / "out.ome.zarr")["target"]
    text = (tmp_path / "out.ome.zarr" / "zarr.json").read_text(encoding="utf-8")
    assert "patient-0042" not in text
    assert "mosaic" not in text
    with open_slide(target) as slide:
        assert "patient-0042" not in str(slide.private_metadata)


def test_private_fields_on_request(tmp_path, svs_like):
    convert_to_ome_zarr(svs_like[0], tmp_path / "out.ome.zarr", include_private=True)
    provenance = root_attributes(tmp_path / "out.ome.zarr")["attributes"]["napari_alma"]
    assert provenance["source_private_metadata"]["Filename"] == "patient-0042"
    assert provenance["source_file_name"] == "mosaic.svs"


def test_no_unit_without_pixel_size(tmp_path, segpc_jpeg):
    convert_to_ome_zarr(segpc_jpeg, tmp_path / "field.ome.zarr")
    multiscale = root_attributes(tmp_path / "field.ome.zarr")["attributes"]["ome"][
        "multiscales"][0]
    assert all("unit" not in axis for axis in multiscale["axes"])
    with open_slide(tmp_path / "field.ome.zarr") as slide:
        assert slide.mpp is None


def test_grey_16bit_kept(tmp_path, mosaic):
    import tifffile

    grey = mosaic[:, :, 1].astype(np.uint16) * 257
    source = tmp_path / "grey16.tif"
    tifffile.imwrite(source, grey, tile=(256, 256))
    convert_to_ome_zarr(source, tmp_path / "grey16.ome.zarr")
    with open_slide(tmp_path / "grey16.ome.zarr") as slide:
        assert slide.levels[0].dtype == np.uint16
        np.testing.assert_array_equal(np.asarray(slide.levels[0]), grey)


def test_existing_target_rejected(tmp_path, segpc_jpeg):
    target = tmp_path / "field.ome.zarr"
    target.mkdir()
    with pytest.raises(FileExistsError, match="--overwrite"):
        convert_to_ome_zarr(segpc_jpeg, target)


def test_overwrite_replaces_target(tmp_path, segpc_jpeg):
    target = tmp_path / "field.ome.zarr"
    target.mkdir()
    (target / "old.txt").write_text("old")
    convert_to_ome_zarr(segpc_jpeg, target, overwrite=True)
    assert not (target / "old.txt").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["field.ome.zarr"]


def test_interrupt_leaves_nothing(tmp_path, pyramid_tiff):
    calls = []

    def interrupt(fraction, message):
        calls.append(fraction)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        convert_to_ome_zarr(pyramid_tiff[0], tmp_path / "cut.ome.zarr", progress=interrupt)
    assert list(tmp_path.iterdir()) == []


def test_planned_shapes_stop_small():
    shapes = planned_shapes([(5000, 3001)])
    assert shapes[1] == (2500, 1500)
    assert max(shapes[-1]) <= COARSEST_MAX_SIDE
    assert max(shapes[-2]) > COARSEST_MAX_SIDE


def test_ctrl_c_stops_between_chunks(tmp_path, pyramid_tiff):
    import signal

    fractions = []

    def press_ctrl_c_once(fraction, message):
        fractions.append(fraction)
        if len(fractions) == 1:
            signal.raise_signal(signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        convert_to_ome_zarr(pyramid_tiff[0], tmp_path / "cut.ome.zarr",
                            progress=press_ctrl_c_once)
    assert len(fractions) == 1
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_given_pixel_size_written(tmp_path, segpc_jpeg):
    convert_to_ome_zarr(segpc_jpeg, tmp_path / "field.ome.zarr", mpp=0.041)
    with open_slide(tmp_path / "field.ome.zarr") as slide:
        assert slide.mpp == pytest.approx(0.041)


def test_implausible_pixel_size_rejected(tmp_path, segpc_jpeg):
    with pytest.raises(ValueError, match="outside the plausible"):
        convert_to_ome_zarr(segpc_jpeg, tmp_path / "field.ome.zarr", mpp=50.0)
    assert not (tmp_path / "field.ome.zarr").exists()
