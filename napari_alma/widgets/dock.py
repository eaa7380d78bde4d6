"""The common base of the review docks: the viewer, its review session and the language."""

from __future__ import annotations

from typing import TYPE_CHECKING

from magicgui.widgets import Container

from napari_alma.core.i18n import tr
from napari_alma.widgets.session import get_session, viewer_language

if TYPE_CHECKING:
    import napari

# Docks wider than this squeeze the canvas on a laptop screen; their long texts wrap.
DOCK_MAX_WIDTH = 460


class SessionDock(Container):
    """A dock bound to a viewer, titled in the reader's language.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose review session (possibly none yet) the dock serves.
    title_key : str
        The :mod:`napari_alma.core.i18n` key of the dock's title.
    """

    def __init__(self, viewer: napari.viewer.Viewer, title_key: str):
        super().__init__(label=False)
        self.viewer = viewer
        session = get_session(viewer)
        self.language = session.language if session else viewer_language()
        self.native.setWindowTitle(tr(title_key, self.language))
        self.native.setMaximumWidth(DOCK_MAX_WIDTH)
