"""Nucleated-cell detection on real smear fields and on synthetic nuclei."""

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from skimage.draw import disk
from skimage.io import imread

from napari_alma.learning.detection import Detections, detect_cells, estimate_mpp

# A 10 µm scale bar of about 242 px is burned into the SegPC fields.
SEGPC_MPP = 10.0 / 242.0
# BCCD states no pixel size: 7.5 µm over its median red-cell box side (about 103 px).
BCCD_MPP = 0.0737
BCCD_IMAGES = ["00000", "00005", "00012", "00022", "00029", "00036"]

# Colours sampled by eye from Romanowsky fields: purple nucleus and pale glass.
NUCLEUS_RGB = (95, 60, 150)
BACKGROUND_RGB = (225, 220, 225)


def _bccd(data_root, number):
    folder = data_root / "bccd" / "BCCD"
    image = imread(folder / "JPEGImages" / f"BloodImage_{number}.jpg")[..., :3]
    boxes = []
    for obj in ET.parse(folder / "Annotations" / f"BloodImage_{number}.xml").findall("object"):
        box = obj.find("bndbox")
        x0, y0, x1, y1 = (float(box.find(k).text) - 1 for k in ("xmin", "ymin", "xmax", "ymax"))
        boxes.append((obj.find("name").text, (y0, x0, y1, x1)))
    return image, boxes


def _inside(position, box):
    return box[0] <= position[0] <= box[2] and box[1] <= position[1] <= box[3]


def _field(shape=(200, 200)):
    return np.full((*shape, 3), BACKGROUND_RGB, dtype=np.uint8)


def _paint_disk(image, centre, radius, colour=NUCLEUS_RGB):
    rr, cc = disk(centre, radius, shape=image.shape[:2])
    image[rr, cc] = colour


@pytest.mark.parametrize("number", BCCD_IMAGES)
def test_bccd_each_wbc_hit_once(data_root, number):
    image, boxes = _bccd(data_root, number)
    detections = detect_cells(image)
    wbc = [box for name, box in boxes if name == "WBC"]
    assert detections.mpp_estimated
    for box in wbc:
        hits = sum(_inside(p, box) for p in detections.positions)
        assert hits == 1, f"WBC box {box} holds {hits} detections"


@pytest.mark.parametrize("number", BCCD_IMAGES)
def test_bccd_red_cells_not_detected(data_root, number):
    image, boxes = _bccd(data_root, number)
    detections = detect_cells(image, mpp=BCCD_MPP)
    wbc = [box for name, box in boxes if name == "WBC"]
    for position in detections.positions:
        assert any(_inside(position, box) for box in wbc), f"detection at {position} off WBC"


def test_segpc_finds_most_plasma_cells(data_root):
    from scipy import ndimage as ndi

    folder = data_root / "segpc2021_bm_plasma_cells" / "mini_test"
    image = imread(folder / "images" / "1991.jpg")[..., :3]
    mask = imread(folder / "masks" / "1991.jpg")
    mask = (mask[..., 0] if mask.ndim == 3 else mask) >= 128
    labels, count = ndi.label(mask)
    sizes = np.bincount(labels.ravel())
    components = [i for i in range(1, count + 1) if sizes[i] * SEGPC_MPP**2 >= 25.0]

    detections = detect_cells(image, mpp=SEGPC_MPP)
    rows, cols = np.rint(detections.positions).astype(int).T
    hit = set(labels[rows, cols]) - {0}
    recall = len(hit & set(components)) / len(components)
    assert len(components) >= 3
    assert recall >= 0.8
    # Each plasma-cell nucleus is one detection; union components hold a few cells.
    assert len(detections) <= 3 * len(components) + 30
    assert not detections.mpp_estimated
    assert detections.mpp == pytest.approx(SEGPC_MPP)


def test_blank_image_has_no_cells():
    detections = detect_cells(np.full((300, 400, 3), 255, dtype=np.uint8), mpp=0.1)
    assert isinstance(detections, Detections)
    assert len(detections) == 0
    assert detections.positions.shape == (0, 2)
    assert detections.diameters.shape == (0,)


def test_blank_image_without_mpp_reports_nan():
    detections = detect_cells(np.full((300, 400, 3), 255, dtype=np.uint8))
    assert len(detections) == 0
    assert np.isnan(detections.mpp)
    assert detections.mpp_estimated


@pytest.mark.parametrize("mpp", [0.25, 0.05])
def test_synthetic_nucleus_found_once(mpp):
    radius_px = 4.0 / mpp  # an 8 µm nucleus
    size = int(6 * radius_px)
    image = _field((size, size + 10))
    centre = (size * 0.45, size * 0.55)
    _paint_disk(image, centre, radius_px)

    detections = detect_cells(image, mpp=mpp)
    assert len(detections) == 1
    np.testing.assert_allclose(detections.positions[0], centre, atol=max(1.5, 0.03 * radius_px))
    assert detections.diameters[0] == pytest.approx(2 * radius_px, rel=0.15)
    assert 0.0 < detections.scores[0] <= 1.0
    assert detections.mpp == mpp


def test_platelet_sized_dot_ignored():
    mpp = 0.1
    image = _field((200, 200))
    _paint_disk(image, (100, 100), 1.25 / mpp)  # a 2.5 µm platelet
    assert len(detect_cells(image, mpp=mpp)) == 0


def test_neutrophil_lobes_merged():
    mpp = 0.1
    image = _field((240, 240))
    # Three 3.5 µm lobes whose edges are 1 µm apart, as in a segmented neutrophil.
    for centre in [(120, 80), (120, 125), (81, 102)]:
        _paint_disk(image, centre, 1.75 / mpp)
    assert len(detect_cells(image, mpp=mpp)) == 1


def test_touching_round_nuclei_split():
    mpp = 0.1
    image = _field((240, 320))
    # Two 8 µm plasma-cell nuclei whose centres are 7.5 µm apart (they overlap slightly).
    _paint_disk(image, (120, 120), 40)
    _paint_disk(image, (120, 195), 40)
    detections = detect_cells(image, mpp=mpp)
    assert len(detections) == 2
    cols = np.sort(detections.positions[:, 1])
    np.testing.assert_allclose(cols, [120, 195], atol=12)


def test_estimate_mpp_segpc_near_scale_bar(data_root):
    image = imread(data_root / "segpc2021_bm_plasma_cells" / "mini_test" / "images" / "1991.jpg")
    estimate = estimate_mpp(image[..., :3])
    assert estimate == pytest.approx(SEGPC_MPP, rel=0.25)


@pytest.mark.parametrize("number", BCCD_IMAGES[:3])
def test_estimate_mpp_bccd_near_red_cells(data_root, number):
    image, _ = _bccd(data_root, number)
    # 00000 reads 36 % fine: gaps of glass enclosed by red-cell clumps get filled.
    assert estimate_mpp(image) == pytest.approx(BCCD_MPP, rel=0.4)


@pytest.mark.parametrize("colour", [(200, 150, 165), (190, 160, 200), (205, 170, 150)])
@pytest.mark.parametrize("mpp", [0.1, 0.05])
def test_estimate_mpp_red_cells_any_tint(colour, mpp):
    # Pink, mauve and orange red cells of 7.5 µm with a pale centre and a blurred rim.
    from scipy import ndimage as ndi

    radius = 3.75 / mpp
    step = int(2.6 * radius)
    image = _field((6 * step, 6 * step)).astype(float)
    for row in range(step // 2, 6 * step, step):
        for col in range(step // 2, 6 * step, step):
            _paint_disk(image, (row, col), radius, colour)
            pallor = (colour[0] + 10, colour[1] + 25, colour[2] + 15)
            _paint_disk(image, (row, col), radius / 3, pallor)
    image = ndi.gaussian_filter(image, (0.08 * radius, 0.08 * radius, 0))
    assert estimate_mpp(image.astype(np.uint8)) == pytest.approx(mpp, rel=0.1)


def test_estimate_mpp_blank_is_none():
    assert estimate_mpp(np.full((200, 200, 3), 240, dtype=np.uint8)) is None


def test_detect_rejects_bad_input():
    with pytest.raises(ValueError, match="rows, cols, 3"):
        detect_cells(np.zeros((10, 10), dtype=np.uint8), mpp=0.1)
    with pytest.raises(ValueError, match="positive"):
        detect_cells(np.zeros((10, 10, 3), dtype=np.uint8), mpp=0.0)


# PBC eosinophils whose two round lobes the watershed splits, with the µm/px used: the PBC
# value from its neutrophil boxes (0.0919) or the detector's own estimate for the image.
PBC_EOSINOPHILS = [("EO_542874", 0.0919), ("EO_297333", 0.1268), ("EO_6489", 0.1369)]
RED_CELL_RGB = (200, 150, 165)


def _pbc(data_root, name):
    folder = data_root / "pbc_wbc_yolo" / "train"
    image = imread(folder / "images" / f"{name}.jpg")[..., :3]
    _, cx, cy, w, h = (float(v) for v in (folder / "labels" / f"{name}.txt").read_text().split())
    rows, cols = image.shape[:2]
    box = ((cy - h / 2) * rows, (cx - w / 2) * cols, (cy + h / 2) * rows, (cx + w / 2) * cols)
    return image, box


@pytest.mark.parametrize(("name", "mpp"), PBC_EOSINOPHILS)
def test_pbc_eosinophil_lobes_one_cell(data_root, name, mpp):
    image, box = _pbc(data_root, name)
    detections = detect_cells(image, mpp=mpp)
    hits = sum(_inside(p, box) for p in detections.positions)
    assert hits == 1, f"{name}: eosinophil box holds {hits} detections"


def _touching_nuclei_in_cytoplasm(cytoplasm_rgb):
    image = _field((240, 320))
    for centre in [(30, 30), (30, 290), (210, 30), (210, 290), (30, 160), (210, 160)]:
        _paint_disk(image, centre, 37, RED_CELL_RGB)  # 7.5 µm red cells
    _paint_disk(image, (120, 160), 75, cytoplasm_rgb)
    _paint_disk(image, (120, 122), 38)
    _paint_disk(image, (120, 198), 38)
    return image


def test_touching_nuclei_in_blue_cytoplasm_split():
    # Two plasma-cell-like nuclei in blue (basophilic) cytoplasm are two cells.
    detections = detect_cells(_touching_nuclei_in_cytoplasm((120, 150, 210)), mpp=0.1)
    assert len(detections) == 2


def test_touching_lobes_in_eosinophilic_cytoplasm_merged():
    # The same two cores in dense orange-red granular cytoplasm are one eosinophil.
    detections = detect_cells(_touching_nuclei_in_cytoplasm((215, 110, 90)), mpp=0.1)
    assert len(detections) == 1
