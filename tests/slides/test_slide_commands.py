"""``napari-alma info`` and ``napari-alma convert`` on slides derived from SegPC fields."""

import json

import numpy as np

from napari_alma.cli import main
from napari_alma.slides import open_slide


def run_json(capsys, *argv):
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_info_reports_levels(capsys, pyramid_tiff, derived_mpp):
    info = run_json(capsys, "info", str(pyramid_tiff[0]))
    assert info["format"] == "tiff"
    assert info["mpp"] == derived_mpp
    assert info["dtype"] == "uint8"
    assert [level["shape"] for level in info["levels"]] == [
        list(level.shape) for level in pyramid_tiff[1]]
    assert info["levels"][1]["translate"][0] > 0


def test_info_hides_private_fields(capsys, svs_like):
    info = run_json(capsys, "info", str(svs_like[0]))
    text = json.dumps(info)
    assert info["vendor"] == "Aperio (Leica)"
    assert "patient-0042" not in text
    assert "mosaic.svs" not in text
    assert "associated_images" not in text
    assert info["private_fields_hidden"] >= 3


def test_info_shows_private_on_request(capsys, svs_like):
    info = run_json(capsys, "info", str(svs_like[0]), "--show-private")
    private = info["private_metadata"]
    assert private["Filename"] == "patient-0042"
    assert set(private["associated_images"]) >= {"Label", "Macro"}
    assert info["path"] == str(svs_like[0])


def test_info_text_names_hidden_count(capsys, svs_like):
    assert main(["info", str(svs_like[0])]) == 0
    text = capsys.readouterr().out
    assert "--show-private" in text
    assert "patient-0042" not in text


def test_info_bad_file_exit_status(capsys, tmp_path):
    path = tmp_path / "notes.tif"
    path.write_text("not an image", encoding="utf-8")
    assert main(["info", str(path)]) == 2
    assert str(path) in capsys.readouterr().err


def test_convert_command_round_trip(capsys, tmp_path, pyramid_tiff):
    target = tmp_path / "mosaic.ome.zarr"
    result = run_json(capsys, "convert", str(pyramid_tiff[0]), str(target))
    assert result["ngff_version"] == "0.5"
    with open_slide(target) as slide:
        np.testing.assert_array_equal(np.asarray(slide.levels[1]), pyramid_tiff[1][1])


def test_convert_refuses_existing(capsys, tmp_path, segpc_jpeg):
    target = tmp_path / "field.ome.zarr"
    target.mkdir()
    assert main(["convert", str(segpc_jpeg), str(target)]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_convert_interrupt_exit_status(capsys, tmp_path, segpc_jpeg, monkeypatch):
    from napari_alma.slides import convert

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(convert, "convert_to_ome_zarr", interrupted)
    assert main(["convert", str(segpc_jpeg), str(tmp_path / "x.ome.zarr")]) == 130
    assert "interrupted" in capsys.readouterr().err
