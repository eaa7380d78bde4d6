"""The pixel-size dock: the slide's µm/px, where it came from, and a control to set it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from magicgui.widgets import FloatSpinBox, Label, PushButton

from napari_alma.core.i18n import tr
from napari_alma.slides.metadata import MPP_RANGE
from napari_alma.widgets import points_style
from napari_alma.widgets.dock import SessionDock
from napari_alma.widgets.session import get_session, on_session

if TYPE_CHECKING:
    import napari

logger = logging.getLogger(__name__)

#: Value offered when the slide has none: a 100x oil objective on a common camera.
DEFAULT_MPP = 0.1
#: Text key of the status line per ``mpp_source`` stored with the slide.
_SOURCE_KEYS = {
    "metadata": "slide_mpp_from_file",
    "user": "slide_mpp_from_user",
    "estimated": "slide_mpp_estimated",
}


class PixelSizeDock(SessionDock):
    """Dock that shows the slide's µm per level-0 pixel and stores a value the reader sets.

    Setting a value stores it with the slide in the project (source ``"user"``), rescales
    the image and cells layers to micrometres and shows the scale bar.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose review session's slide is measured.
    """

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(viewer, "slide_pixel_size_title")
        lang = self.language
        self.status = Label(value="")
        self.status.native.setWordWrap(True)
        self.mpp = FloatSpinBox(
            value=DEFAULT_MPP,
            min=MPP_RANGE[0],
            max=MPP_RANGE[1],
            step=0.001,
            label=tr("slide_mpp_label", lang),
            tooltip=tr("slide_mpp_tooltip", lang),
        )
        self.mpp.native.setDecimals(4)
        self.apply = PushButton(text=tr("slide_mpp_apply", lang))
        self.apply.changed.connect(self._apply)
        self.extend([self.status, self.mpp, self.apply])
        self._show_stored()
        on_session(viewer, lambda session: self._show_stored())

    def set_mpp(self, mpp: float) -> None:
        """Store ``mpp`` (µm per level-0 pixel) with the slide and rescale the layers.

        Raises
        ------
        ValueError
            When ``mpp`` is outside the plausible 0.01-10 µm/px.
        """
        session = get_session(self.viewer)
        if session is None:
            raise ValueError(tr("no_session", self.language))
        session.project.set_mpp(session.slide_id, mpp, "user")
        apply_pixel_size(self.viewer, session, mpp)
        self._show_stored()

    def _apply(self) -> None:
        from napari.utils.notifications import show_error, show_info

        value = float(self.mpp.value)
        try:
            self.set_mpp(value)
        except ValueError as err:
            logger.error("Pixel size %s µm/px not stored: %s", value, err)
            show_error(str(err))
            return
        show_info(tr("slide_mpp_stored", self.language, mpp=value))

    def _show_stored(self) -> None:
        session = get_session(self.viewer)
        if session is None:
            self.status.value = tr("no_session", self.language)
            return
        slide = session.slide
        if slide["mpp"] is None:
            self.status.value = tr("slide_mpp_unknown", self.language)
            return
        key = _SOURCE_KEYS.get(slide["mpp_source"], "slide_mpp_from_file")
        self.status.value = tr(key, self.language, mpp=slide["mpp"])
        self.mpp.value = slide["mpp"]


def apply_pixel_size(viewer, session, mpp: float) -> None:
    """Rescale the slide and cells layers to ``mpp`` µm per level-0 pixel and show the scale bar."""
    from napari_alma.widgets.launch import show_scale_bar

    scale = (mpp, mpp)
    session.image_layer.scale = scale
    show_scale_bar(viewer, session.image_layer)
    cells = session.cells_layer
    if cells is not None:
        cells.scale = scale
        if hasattr(cells, "units"):
            cells.units = tuple(session.image_layer.units[-2:])
        size = points_style.point_size(mpp)
        cells.size = size
        cells.current_size = size
    viewer.reset_view()


def notify_missing_pixel_size(language: str) -> None:
    """Tell the reader that the file states no pixel size and where to set it."""
    from napari.utils.notifications import show_warning

    show_warning(tr("slide_mpp_missing_notice", language))
