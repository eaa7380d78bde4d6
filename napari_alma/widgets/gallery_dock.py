"""The gallery dock: the slide's cells as crops of a fixed physical size, grouped by class.

The reader picks a class group (or all groups, one after the other), a sort order and
whether to show only the cells not reviewed yet. Clicking a crop centres the viewer on
the cell and selects it in the cells layer. A class key pressed in the gallery, or a drag
of crops onto a class in the group list or onto a crop of another class, stores the new
class through the review session like any other correction.

One wrapping ``QListView`` (``gallery_views``) paints only the visible crops, so 10,000
cells cost 10,000 model rows, not 10,000 widgets (see ``gallery_model``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from qtpy.QtCore import Qt
from qtpy.QtGui import QColor, QIcon, QPixmap
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from napari_alma.core.i18n import tr
from napari_alma.core.scheme import ClassScheme, default_scheme
from napari_alma.widgets import gallery_data, keys, points_style, user_settings
from napari_alma.widgets.dock import SessionDock
from napari_alma.widgets.gallery_model import CELL_ID_ROLE, CropCache, GalleryModel
from napari_alma.widgets.gallery_views import CROP_PX, CropDelegate, GalleryView, GroupList
from napari_alma.widgets.session import get_session, on_session

if TYPE_CHECKING:
    import napari

# Crops show the same 20 µm square that the cells layer circles on the slide.
CROP_UM = points_style.MARKER_DIAMETER_UM
ALL_GROUPS = ""
GROUP_LIST_HEIGHT = 150


class GalleryDock(SessionDock):
    """Dock showing the review session's cells as a gallery of crops.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose review session's cells are shown.
    """

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(viewer, "gallery_title")
        session = get_session(viewer)
        self.scheme: ClassScheme = session.scheme if session else default_scheme()
        self.session = None
        self.items = gallery_data.gallery_items(points_style.empty_features(), np.empty((0, 2)),
                                                pd.DataFrame())
        self._scores = pd.DataFrame(columns=list(gallery_data.UNCERTAINTY_COLUMNS))
        self._predictions = None
        self.crops: CropCache | None = None
        self.model: GalleryModel | None = None
        # True while the gallery copies the cells layer's selection, which must then
        # neither flow back to the layer nor move the camera.
        self._following_layer = False
        self._build()
        self.update_keys()
        if session is not None:
            self._attach(session)
        else:
            self.summary.setText(tr("no_session", self.language))
        on_session(viewer, self._attach)

    # -- layout --------------------------------------------------------------------------
    def _build(self) -> None:
        lang = self.language
        self.sort = QComboBox()
        for order in gallery_data.SORT_ORDERS:
            self.sort.addItem(tr(f"gallery_sort_{order}", lang), order)
        self.sort.setToolTip(tr("gallery_sort_tooltip", lang))
        self.sort.currentIndexChanged.connect(self._show)
        self.not_reviewed = QCheckBox(tr("gallery_not_reviewed", lang))
        self.not_reviewed.setToolTip(tr("gallery_not_reviewed_tooltip", lang))
        self.not_reviewed.toggled.connect(self._show)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.groups = GroupList()
        self.groups.setToolTip(tr("gallery_groups_tooltip", lang))
        self.groups.currentRowChanged.connect(self._show)
        self.groups.cells_dropped.connect(self.drop_cells)
        self.view = GalleryView()
        self.view.setToolTip(tr("gallery_view_tooltip", lang))
        self.view.setItemDelegate(CropDelegate(self.view, self.scheme))
        self.view.class_key_pressed.connect(self.classify_selected)
        self.view.review_key_pressed.connect(self.review_selected)
        self.view.clicked.connect(self._centre_on)
        self.settings_button = QPushButton(tr("settings_open", lang))
        self.settings_button.setToolTip(tr("settings_open_tooltip", lang))
        self.settings_button.clicked.connect(self.open_settings)
        self._fill_groups()
        self.native.layout().addWidget(self._panel(), 1)

    def _panel(self) -> QWidget:
        panel = QWidget()
        # An expanding panel stops napari from adding a stretch below it, so the crops
        # take the dock's whole height.
        panel.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(0, 0, 0, 0)
        controls = QHBoxLayout()
        controls.addWidget(QLabel(tr("gallery_sort", self.language)))
        controls.addWidget(self.sort, 1)
        layout.addLayout(controls)
        layout.addWidget(self.not_reviewed)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.groups)
        splitter.addWidget(self.view)
        splitter.setSizes([GROUP_LIST_HEIGHT, 4 * GROUP_LIST_HEIGHT])
        layout.addWidget(splitter, 1)
        layout.addWidget(self.summary)
        layout.addWidget(self.settings_button)
        return panel

    def _fill_groups(self) -> None:
        self.groups.addItem(QListWidgetItem(""))
        for cell_class in self.scheme.classes:
            item = QListWidgetItem(_swatch(cell_class.color), "")
            item.setData(Qt.ItemDataRole.UserRole, cell_class.code)
            self.groups.addItem(item)
        self.groups.item(0).setData(Qt.ItemDataRole.UserRole, ALL_GROUPS)
        self.groups.setCurrentRow(0)

    def update_keys(self) -> None:
        """Take the reader's current class keys, for the gallery and its group names."""
        class_keys = user_settings.class_keys(self.scheme)
        self.view.key_to_code = {key: code for code, key in class_keys.items()}
        self.class_keys = class_keys
        self._label_groups()

    def _label_groups(self) -> None:
        counts = gallery_data.group_counts(self.items, self.scheme, self.not_reviewed.isChecked())
        self.groups.item(0).setText(
            tr("gallery_all_groups", self.language, n=sum(counts.values())))
        for row, cell_class in enumerate(self.scheme.classes, start=1):
            self.groups.item(row).setText(tr(
                "gallery_group", self.language, shortcut=self.class_keys[cell_class.code],
                name=cell_class.name(self.language), n=counts[cell_class.code],
            ))

    # -- the session ---------------------------------------------------------------------
    def _attach(self, session) -> None:
        if session is self.session:
            return
        self.session = session
        self.crops = _crop_cache(session)
        self.model = GalleryModel(self.crops, self._describe)
        self.model.drop_handler = self.drop_cells
        self.view.setModel(self.model)
        self.view.selectionModel().selectionChanged.connect(self._select_in_layer)
        self.view.selectionModel().currentChanged.connect(self._centre_on)
        self.view.verticalScrollBar().valueChanged.connect(self.crops.cancel_pending)
        session.cells_layer.selected_data.events.items_changed.connect(self._select_from_layer)
        self._scores = self._scores.iloc[0:0]
        self._predictions = None
        session.connect(self.refresh)
        self.refresh()

    def refresh(self, *_args) -> None:
        """Read the cells layer again and update the gallery's rows where they changed."""
        session = self.session
        if session is None or session.cells_layer is None:
            return
        # A prediction may have estimated the pixel size since the gallery opened.
        self.crops.set_scale(*crop_scale(session.slide["mpp"]))
        layer = session.cells_layer
        self.items = gallery_data.gallery_items(layer.features, layer.data[:, -2:],
                                                self._uncertainty(session, layer.features))
        self._show()

    def _uncertainty(self, session, features: pd.DataFrame) -> pd.DataFrame:
        """Return the scores, reading the probabilities only when the predictions changed."""
        if session.blind:
            # A blind reader must not see the model's output, its doubt included.
            return pd.DataFrame(columns=list(gallery_data.UNCERTAINTY_COLUMNS))
        predictions = features[["cell_id", "predicted_class", "confidence"]].reset_index(drop=True)
        if self._predictions is None or not predictions.equals(self._predictions):
            table = session.project.cell_table(session.slide_id, reader=session.reader)
            self._scores = gallery_data.uncertainty_table(table["cell_id"], table["probabilities"])
            self._predictions = predictions
        return self._scores

    def _show(self, *_args) -> None:
        if self.model is None:
            return
        ids = gallery_data.order_cells(self.items, self.scheme, group=self.group() or None,
                                       sort=self.sort.currentData(),
                                       not_reviewed=self.not_reviewed.isChecked())
        self.model.set_cells(ids, self.items)
        self._label_groups()
        self.summary.setText(tr("gallery_summary", self.language, shown=len(ids),
                                total=len(self.items),
                                unreviewed=int((~self.items["reviewed"]).sum())))

    def group(self) -> str:
        """Return the class code of the group shown, or "" for all groups."""
        item = self.groups.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else ALL_GROUPS

    def set_group(self, code: str) -> None:
        """Show the group of class ``code`` ("" for all groups)."""
        self.groups.setCurrentRow(0 if not code else self.scheme.codes.index(code) + 1)

    def set_sort(self, order: str) -> None:
        """Sort the cells by ``order``, a key of ``gallery_data.SORT_ORDERS``."""
        self.sort.setCurrentIndex(list(gallery_data.SORT_ORDERS).index(order))

    # -- reader actions ------------------------------------------------------------------
    def shown_ids(self) -> list[int]:
        """Return the ids of the cells shown, in gallery order."""
        return list(self.model.ids) if self.model is not None else []

    def selected_ids(self) -> list[int]:
        """Return the ids of the selected crops, in gallery order."""
        if self.model is None:
            return []
        rows = sorted(index.row() for index in self.view.selectionModel().selectedIndexes())
        return [self.model.ids[row] for row in rows]

    def select_cells(self, cell_ids) -> None:
        """Select the crops of ``cell_ids``; the first becomes the current crop."""
        from qtpy.QtCore import QItemSelection, QItemSelectionModel

        selection = QItemSelection()
        rows = [self.model.row_of[c] for c in cell_ids if c in self.model.row_of]
        for row in rows:
            index = self.model.index(row, 0)
            selection.select(index, index)
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect
        self.view.selectionModel().select(selection, flags)
        if rows:
            self.view.selectionModel().setCurrentIndex(
                self.model.index(rows[0], 0), QItemSelectionModel.SelectionFlag.NoUpdate)
            self.view.scrollTo(self.model.index(rows[0], 0))

    def move_cells(self, cell_ids, code: str) -> None:
        """Store ``code`` as the reader's class of ``cell_ids``."""
        session = self.session
        if session is None or not cell_ids or code not in self.scheme:
            return
        session.select_ids(cell_ids)
        keys.run_action(session, keys.apply_class, session, code)

    def drop_cells(self, cell_ids, code: str) -> None:
        """Move dropped cells to ``code``; a drop inside a cell's own group changes nothing."""
        classes = self.items["class"]
        moved = [c for c in cell_ids if c in classes.index and classes[c] != code]
        self.move_cells(moved, code)

    def classify_selected(self, code: str) -> None:
        """Move the selected crops to class ``code`` and select the next cell."""
        self._act_and_advance(lambda ids: self.move_cells(ids, code))

    def review_selected(self) -> None:
        """Mark the selected crops as reviewed and select the next cell."""
        def review(ids):
            self.session.select_ids(ids)
            keys.run_action(self.session, keys.mark_reviewed, self.session)

        self._act_and_advance(review)

    def _act_and_advance(self, action) -> None:
        ids = self.selected_ids()
        if not ids or self.session is None:
            return
        first_row = min(self.model.row_of[c] for c in ids)
        action(ids)
        following = [c for c in self.model.ids[first_row:] if c not in ids]
        if following:
            self.select_cells([following[0]])

    def _select_in_layer(self, *_args) -> None:
        if self.session is not None and not self._following_layer:
            self.session.select_ids(self.selected_ids())

    def _select_from_layer(self, *_args) -> None:
        """Select in the gallery the cells selected on the canvas, and scroll to them."""
        if self.model is None or self._following_layer:
            return
        layer_ids = self.session.selected_ids()
        if set(layer_ids) == set(self.selected_ids()):
            return
        self._following_layer = True
        try:
            self.select_cells(layer_ids)
        finally:
            self._following_layer = False

    def _centre_on(self, index, *_args) -> None:
        """Centre the viewer on the cell of ``index`` and select it in the cells layer."""
        if self.session is None or not index.isValid() or self._following_layer:
            return
        item = self.items.loc[index.data(CELL_ID_ROLE)]
        layer = self.session.cells_layer
        centre = layer.data_to_world(np.array([item["row"], item["col"]], dtype=float))
        _camera(self.viewer).center = tuple(float(v) for v in centre[-2:])
        selected = self.selected_ids() or [int(item["cell_id"])]
        self.session.select_ids(selected)

    def open_settings(self, *_args) -> None:
        """Open the dialog that sets the class keys and the language."""
        from napari_alma.widgets.settings_dialog import open_settings

        open_settings(self.viewer, self.language, self.native)
        self.update_keys()

    def _describe(self, item) -> str:
        lang = self.language
        code = str(item["class"])
        name = self.scheme[code].name(lang) if code in self.scheme else code
        predicted = str(item["predicted_class"])
        if predicted in self.scheme:
            model_text = tr("gallery_tooltip_model", lang,
                            name=self.scheme[predicted].name(lang),
                            confidence=100 * float(item["confidence"]))
        else:
            model_text = tr("gallery_tooltip_added", lang)
        state = tr("gallery_reviewed" if item["reviewed"] else "gallery_unreviewed", lang)
        return tr("gallery_tooltip", lang, cell_id=int(item["cell_id"]), name=name,
                  model=model_text, state=state)


def _camera(viewer):
    """Return the viewer's camera (``viewer.scene.camera`` from napari 0.9 on)."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None else viewer.camera


def _crop_cache(session) -> CropCache:
    """Return a crop cache reading the session's level-0 image at the gallery's size."""
    layer = session.image_layer
    image = layer.data[0] if layer.multiscale else layer.data
    return CropCache(image, *crop_scale(session.slide["mpp"]), CROP_PX)


def crop_scale(mpp: float | None) -> tuple[float, float]:
    """Return the (µm/px, crop side) that ``CropCache`` takes for a slide's pixel size.

    Without a pixel size, a crop is as many pixels as the cells layer's marker.
    """
    if mpp:
        return mpp, CROP_UM
    return 1.0, points_style.FALLBACK_MARKER_DIAMETER_PX


def _swatch(color: str) -> QIcon:
    pixmap = QPixmap(12, 12)
    pixmap.fill(QColor(color))
    return QIcon(pixmap)
