import numpy as np
import pytest
from skimage import io

from napari_alma.learning.crops import extract_crops


def _marked_image(row, col, shape=(200, 300)):
    image = np.full((*shape, 3), 200, dtype=np.uint8)
    image[row, col] = (255, 0, 0)
    return image


@pytest.mark.parametrize(
    ("mpp", "crop_um", "crop_px"),
    [(1.0, 21, 21), (0.5, 20, 41), (1.0, 63, 21), (0.25, 11, 33)],
)
def test_marked_pixel_lands_at_crop_centre(mpp, crop_um, crop_px):
    image = _marked_image(50, 70)
    crop = extract_crops(image, [(50.0, 70.0)], mpp, crop_um, crop_px)[0]
    darkest = np.unravel_index(np.argmin(crop[..., 1]), crop.shape[:2])
    assert darkest == (crop_px // 2, crop_px // 2)
    assert crop[..., 1].min() < 200


def test_crop_shape_and_dtype():
    image = _marked_image(50, 70)
    crops = extract_crops(image, np.array([[50, 70], [100, 150], [10, 10]]), 0.5, 12.0, 32)
    assert crops.shape == (3, 32, 32, 3)
    assert crops.dtype == np.uint8


def test_border_padded_with_median_background():
    image = np.full((100, 100, 3), (230, 210, 220), dtype=np.uint8)
    image[:10, :10] = (90, 40, 120)
    crop = extract_crops(image, [(0.0, 0.0)], 1.0, 40, 40)[0]
    # Crop pixel (i, j) samples image pixel (i - 20, j - 20).
    assert tuple(crop[0, 0]) == (230, 210, 220)
    assert tuple(crop[25, 25]) == (90, 40, 120)
    assert tuple(crop[35, 35]) == (230, 210, 220)


def test_border_padded_with_given_fill():
    image = np.zeros((50, 50, 3), dtype=np.uint8)
    crop = extract_crops(image, [(0.0, 0.0)], 1.0, 20, 20, fill=(255, 255, 255))[0]
    assert tuple(crop[0, 0]) == (255, 255, 255)
    assert tuple(crop[-1, -1]) == (0, 0, 0)


def test_cell_outside_image_gives_white():
    image = np.zeros((50, 50, 3), dtype=np.uint8)
    crop = extract_crops(image, [(500.0, 500.0)], 1.0, 20, 20)[0]
    assert (crop == 255).all()


def test_dask_input_matches_numpy():
    import dask.array as da

    image = _marked_image(120, 40)
    lazy = da.from_array(image, chunks=(64, 64, 3))
    positions = [(120.0, 40.0), (5.5, 290.2)]
    expected = extract_crops(image, positions, 0.8, 16, 24)
    np.testing.assert_array_equal(extract_crops(lazy, positions, 0.8, 16, 24), expected)


def test_reads_only_the_window():
    class Recorder:
        def __init__(self, array):
            self.array, self.shape, self.reads = array, array.shape, []

        def __getitem__(self, key):
            self.reads.append(key)
            return self.array[key]

    recorder = Recorder(_marked_image(100, 150, shape=(1000, 1000)))
    extract_crops(recorder, [(100.0, 150.0)], 1.0, 30, 30)
    (rows, cols), = recorder.reads
    assert rows.stop - rows.start < 50
    assert cols.stop - cols.start < 50


def test_real_pbc_cell_is_centred(data_root):
    image = io.imread(data_root / "pbc_wbc_yolo/train/images/LY_114808.jpg")[..., :3]
    fields = (data_root / "pbc_wbc_yolo/train/labels/LY_114808.txt").read_text().split()
    col = float(fields[1]) * image.shape[1] - 0.5
    row = float(fields[2]) * image.shape[0] - 0.5
    crop = extract_crops(image, [(row, col)], 0.09, 24, 64)[0]
    # The lymphocyte nucleus is dark purple, the background pale pink.
    centre = crop[24:40, 24:40].mean(axis=(0, 1))
    corner = crop[:8, :8].mean(axis=(0, 1))
    assert centre.sum() < corner.sum() - 100


@pytest.mark.parametrize("bad", [{"mpp": 0}, {"crop_um": -1}, {"crop_px": 0}])
def test_invalid_geometry_raises(bad):
    arguments = {"mpp": 1.0, "crop_um": 10.0, "crop_px": 10} | bad
    with pytest.raises(ValueError, match=next(iter(bad))):
        extract_crops(np.zeros((10, 10, 3), np.uint8), [(5, 5)], **arguments)


def test_grey_image_raises():
    with pytest.raises(ValueError, match="RGB"):
        extract_crops(np.zeros((10, 10), np.uint8), [(5, 5)], 1.0, 4, 4)
