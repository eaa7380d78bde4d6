"""Open a slide for review in a napari viewer: image, cells layer and the review docks."""

from __future__ import annotations

import logging
from pathlib import Path

from napari_alma.core.i18n import tr
from napari_alma.store.project import Project, default_reader
from napari_alma.store.second_read import is_reading_blind, start_second_read
from napari_alma.widgets.session import ReviewSession, set_session

logger = logging.getLogger(__name__)


def open_in_viewer(
    viewer,
    slide_path: str | Path,
    project_folder: str | Path,
    reader: str | None = None,
    predict: bool = True,
    model_dir: str | Path | None = None,
    blind: bool = False,
) -> ReviewSession:
    """Show a slide with its cells and the review docks; predict first if it has no cells.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer to fill.
    slide_path : str or Path
        Any image the slides reader opens (JPEG, PNG, TIFF, SVS, OME-TIFF, OME-Zarr).
    project_folder : str or Path
        The project (created when missing) where cells and labels are stored.
    reader : str, optional
        Name recorded with the reader's changes; by default the operating-system user.
    predict : bool
        Detect and classify the cells when the slide has none stored yet. This runs on the
        calling thread (the command line and tests use it); the model dock runs it in a
        worker thread.
    model_dir : str or Path, optional
        The model folder; by default the project's active model.
    blind : bool
        Start a blind second read: the model's classes and the other readers' labels are
        hidden. A blind read this reader started and has not ended reopens blind too.

    Returns
    -------
    ReviewSession
        The viewer's new review session.
    """
    from napari_alma.slides.reader import fingerprint, open_slide

    slide = open_slide(slide_path)
    project = Project(project_folder)
    slide_id = _register(project, slide_path, slide, fingerprint(slide_path))
    reader = reader or default_reader()
    if blind:
        start_second_read(project, slide_id, reader)
    if predict and not _has_cells(project, slide_id):
        _predict(project, slide_path, model_dir, viewer)
    image_layer = add_slide_image(viewer, slide, Path(slide_path).name,
                                  project.slide(slide_id)["mpp"])
    session = ReviewSession(viewer, project, slide_id, image_layer, reader=reader,
                            blind=is_reading_blind(project, slide_id, reader))
    session.add_cells_layer()
    set_session(viewer, session)
    session.docks = dock_widgets(viewer, session)
    if session.slide["mpp"] is None:
        from napari_alma.widgets.pixel_size import notify_missing_pixel_size

        notify_missing_pixel_size(session.language)
    viewer.layers.selection.active = session.cells_layer
    viewer.reset_view()
    return session


def _register(project: Project, slide_path, slide, slide_fingerprint: str) -> str:
    mpp = slide.mpp
    return project.register_slide(
        Path(slide_path).resolve(), slide_fingerprint, tuple(slide.shape[:2]), mpp,
        "metadata" if mpp else None,
    )


def _has_cells(project: Project, slide_id: str) -> bool:
    return len(project.cell_table(slide_id, include_deleted=True)) > 0


def _predict(project: Project, slide_path, model_dir, viewer) -> None:
    from napari.utils.notifications import show_info, show_warning

    from napari_alma.learning.predict import MissingPixelSizeError, predict_slide

    language = _language()
    try:
        result = predict_slide(project, slide_path, model_dir=model_dir)
    except MissingPixelSizeError:
        # The slide still opens, with no cells: the reader sets the pixel size (or adds
        # cells by hand) instead of losing the viewer to an exception.
        show_warning(tr("mpp_missing", language))
        return
    if not result["new"] and not result["matched"]:
        show_info(tr("no_cells_found", language))
    if result.get("mpp_estimated") and result.get("mpp"):
        show_warning(tr("mpp_estimated", language, mpp=result["mpp"]))


def _language() -> str:
    from napari_alma.widgets.session import viewer_language

    return viewer_language()


def add_slide_image(viewer, slide, name: str, mpp: float | None):
    """Add the slide's pyramid as an RGB image layer scaled to µm when ``mpp`` is known."""
    levels = list(slide.levels)
    scale = (mpp, mpp) if mpp else (1.0, 1.0)
    layer = viewer.add_image(
        levels if len(levels) > 1 else levels[0],
        multiscale=len(levels) > 1,
        rgb=True,
        name=name,
        scale=scale,
    )
    if mpp:
        show_scale_bar(viewer, layer)
    return layer


def show_scale_bar(viewer, layer) -> None:
    """Show a micrometre scale bar, with the API of napari 0.9 or of earlier releases."""
    overlays = getattr(getattr(viewer, "canvas", None), "overlays", None)
    if overlays is not None and hasattr(layer, "units"):
        layer.units = ("um", "um")
        overlays["scale_bar"].visible = True
    else:
        viewer.scale_bar.unit = "um"
        viewer.scale_bar.visible = True


def dock_widgets(viewer, session: ReviewSession) -> dict:
    """Dock the review desk's widgets on the right; return them by name."""
    from napari_alma.widgets.agreement_dock import AgreementDock
    from napari_alma.widgets.count_dock import CountDock
    from napari_alma.widgets.desk_dock import QueueDock
    from napari_alma.widgets.gallery_dock import GalleryDock
    from napari_alma.widgets.key_passthrough import pass_class_keys_through
    from napari_alma.widgets.model_dock import ModelDock
    from napari_alma.widgets.pixel_size import PixelSizeDock
    from napari_alma.widgets.review_dock import ReviewDock
    from napari_alma.widgets.train_dock import TrainDock

    language = session.language
    # Every dock but review and model sits in one tab group, so the count and the class
    # buttons stay visible together. The last dock added to a tab group is the one shown.
    widgets = {
        "review": ReviewDock(viewer),
        "model": ModelDock(viewer),
        "pixel_size": PixelSizeDock(viewer),
        "queue": QueueDock(viewer),
        "agreement": AgreementDock(viewer),
        "gallery": GalleryDock(viewer),
        "train": TrainDock(viewer),
        "count": CountDock(viewer),
    }
    titles = {"review": "dock_review", "count": "dock_count", "model": "dock_model",
              "pixel_size": "slide_pixel_size_title", "queue": "review_dock_queue",
              "agreement": "second_dock_agreement", "gallery": "gallery_title",
              "train": "learn_dock_train"}
    for name, widget in widgets.items():
        viewer.window.add_dock_widget(widget, name=tr(titles[name], language), area="right",
                                      tabify=name not in ("review", "model"))
        pass_class_keys_through(widget.native, session.scheme)
    return widgets
