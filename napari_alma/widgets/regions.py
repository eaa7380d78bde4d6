"""Level-0 pixel regions of a slide from the viewer: the current view or drawn shapes."""

from __future__ import annotations

import numpy as np

Region = tuple[int, int, int, int]


def view_region(viewer, image_layer) -> Region:
    """Return the level-0 bounds (r0, c0, r1, c1) of the slide area shown on the canvas.

    The view is the camera centre plus or minus half the canvas size divided by the zoom
    (screen pixels per world unit), converted to the image layer's level-0 pixels and
    clipped to the slide.
    """
    camera = viewer_camera(viewer)
    centre = np.asarray(camera.center[-2:], dtype=float)
    half = np.asarray(viewer.canvas.size, dtype=float) / (2.0 * camera.zoom)
    corners = np.stack([centre - half, centre + half])
    return _bounds_in_layer(image_layer, corners)


def viewer_camera(viewer):
    """Return the camera: ``viewer.scene.camera`` from napari 0.9, else ``viewer.camera``."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None else viewer.camera


def shape_regions(shapes_layer, image_layer) -> list[Region]:
    """Return the level-0 bounding box of each shape of a shapes layer, clipped to the slide.

    Shapes lying wholly outside the slide are left out.
    """
    regions = []
    for vertices in shapes_layer.data:
        vertices = np.asarray(vertices, dtype=float)[:, -2:]
        world = _layer_to_world(shapes_layer, vertices)
        try:
            regions.append(_bounds_in_layer(image_layer, world))
        except ValueError:
            continue
    return regions


def _layer_to_world(layer, points: np.ndarray) -> np.ndarray:
    scale = np.asarray(layer.scale, dtype=float)[-2:]
    translate = np.asarray(layer.translate, dtype=float)[-2:]
    return points * scale + translate


def _bounds_in_layer(image_layer, world_points: np.ndarray) -> Region:
    """Return the integer level-0 box around ``world_points``, clipped to the image."""
    scale = np.asarray(image_layer.scale, dtype=float)[-2:]
    translate = np.asarray(image_layer.translate, dtype=float)[-2:]
    pixels = (np.asarray(world_points, dtype=float) - translate) / scale
    shape = _level0_shape(image_layer)
    r0, c0 = np.floor(pixels.min(axis=0)).astype(int)
    r1, c1 = np.ceil(pixels.max(axis=0)).astype(int) + 1
    box = (max(r0, 0), max(c0, 0), min(r1, shape[0]), min(c1, shape[1]))
    if box[0] >= box[2] or box[1] >= box[3]:
        raise ValueError(f"The area {pixels.tolist()} (level-0 pixels) lies outside the slide.")
    return tuple(int(v) for v in box)


def _level0_shape(image_layer) -> tuple[int, int]:
    data = image_layer.data[0] if image_layer.multiscale else image_layer.data
    return int(data.shape[0]), int(data.shape[1])
