"""The gallery's Qt model and its crop cache: one list row per cell, crops read in threads.

The view requests a crop from the model only when it paints an item, so only the crops
of cells that were on screen are read. Each read runs in a ``QThreadPool`` worker. The
finished crop becomes a ``QPixmap`` on the GUI thread and stays in a bounded cache keyed
by cell id, so a class change or a new sort order repaints without reading the slide.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

import numpy as np
import pandas as pd
from qtpy.QtCore import (
    QAbstractListModel,
    QMimeData,
    QModelIndex,
    QObject,
    QRunnable,
    Qt,
    QThreadPool,
    Signal,
)
from qtpy.QtGui import QImage, QPixmap

from napari_alma.learning.crops import extract_crops

logger = logging.getLogger(__name__)

CELL_ID_ROLE = Qt.ItemDataRole.UserRole + 1
CLASS_ROLE = Qt.ItemDataRole.UserRole + 2
REVIEWED_ROLE = Qt.ItemDataRole.UserRole + 3
CELLS_MIME_TYPE = "application/x-napari-alma-cells"
SHOWN_COLUMNS = ("row", "col", "class", "reviewed")
# About 20 MB of 72 x 72 RGB crops: a few screens of a scrolled gallery.
CACHE_LIMIT = 1000
# Crop reads share the CPU with napari's own tile loading.
READ_THREADS = 2


class CropCache(QObject):
    """Crops of one slide's cells, read on request in worker threads.

    Parameters
    ----------
    image : (rows, cols, 3) uint8 array-like
        The slide's level-0 image (numpy, dask or zarr); only windows are read.
    mpp : float
        Pixel size of ``image`` in µm per pixel.
    crop_um : float
        Side of a crop in micrometres.
    crop_px : int
        Side of a crop on screen, in pixels.
    """

    loaded = Signal(int)
    _finished = Signal(int, int, object)

    def __init__(self, image, mpp: float, crop_um: float, crop_px: int):
        super().__init__()
        self.image, self.mpp, self.crop_um, self.crop_px = image, mpp, crop_um, crop_px
        self.pool = QThreadPool()
        self.pool.setMaxThreadCount(READ_THREADS)
        self.pixmaps: OrderedDict[int, QPixmap] = OrderedDict()
        self.pending: set[int] = set()
        self.reads = 0
        # Bumped when the scale changes, so that reads started before are discarded.
        self.generation = 0
        self._finished.connect(self._store)

    def pixmap(self, cell_id: int, row: float, col: float) -> QPixmap | None:
        """Return the cell's crop, or None and start reading it when it is not cached."""
        pixmap = self.pixmaps.get(cell_id)
        if pixmap is not None:
            self.pixmaps.move_to_end(cell_id)
            return pixmap
        if cell_id not in self.pending:
            self.pending.add(cell_id)
            self.reads += 1
            self.pool.start(_CropRead(self, cell_id, row, col))
        return None

    def set_scale(self, mpp: float, crop_um: float) -> None:
        """Read crops at a new pixel size or crop side, dropping the crops cut before."""
        if (mpp, crop_um) == (self.mpp, self.crop_um):
            return
        self.cancel_pending()
        self.mpp, self.crop_um = mpp, crop_um
        self.generation += 1
        self.pixmaps.clear()

    def cancel_pending(self) -> None:
        """Drop the reads not started yet, e.g. when the view scrolled past their cells."""
        self.pool.clear()
        self.pending.clear()

    def wait(self, milliseconds: int = 5000) -> bool:
        """Wait for the running reads to finish; return False on a timeout."""
        return self.pool.waitForDone(milliseconds)

    def read(self, row: float, col: float, mpp: float, crop_um: float) -> np.ndarray:
        """Return the (crop_px, crop_px, 3) uint8 crop of ``crop_um`` centred on (row, col)."""
        return extract_crops(self.image, [(row, col)], mpp, crop_um, self.crop_px)[0]

    def _store(self, cell_id: int, generation: int, crop) -> None:
        # NOTE: a read that was running when its queue was cleared is kept all the same.
        if generation != self.generation:
            return
        self.pending.discard(cell_id)
        if crop is None:
            return
        self.pixmaps[cell_id] = _to_pixmap(crop)
        while len(self.pixmaps) > CACHE_LIMIT:
            self.pixmaps.popitem(last=False)
        self.loaded.emit(cell_id)


class _CropRead(QRunnable):
    def __init__(self, cache: CropCache, cell_id: int, row: float, col: float):
        super().__init__()
        self.cache, self.cell_id, self.row, self.col = cache, cell_id, row, col
        # The scale is copied here, because the GUI thread may change it during the read.
        self.mpp, self.crop_um, self.generation = cache.mpp, cache.crop_um, cache.generation

    def run(self) -> None:
        try:
            crop = self.cache.read(self.row, self.col, self.mpp, self.crop_um)
        except Exception:  # noqa: BLE001 -- a worker thread must not raise into Qt
            logger.exception("Reading the crop of cell %s failed", self.cell_id)
            crop = None
        self.cache._finished.emit(self.cell_id, self.generation, crop)


def _to_pixmap(crop: np.ndarray) -> QPixmap:
    crop = np.ascontiguousarray(crop)
    height, width = crop.shape[:2]
    image = QImage(crop.data, width, height, 3 * width, QImage.Format.Format_RGB888)
    return QPixmap.fromImage(image.copy())


class GalleryModel(QAbstractListModel):
    """List model of the cells shown in the gallery, in display order.

    ``set_cells`` moves, adds and removes rows one block at a time instead of resetting,
    so that the view keeps its scroll position, selection and current cell.

    Parameters
    ----------
    crops : CropCache
        Where the crops come from.
    describe : callable
        ``describe(item) -> str``: the tooltip of a cell, from its row of the items table.
    """

    def __init__(self, crops: CropCache, describe):
        super().__init__()
        self.crops = crops
        self.describe = describe
        self.ids: list[int] = []
        self.items = pd.DataFrame()
        self._columns: dict[str, np.ndarray] = {}
        self.row_of: dict[int, int] = {}
        self.drop_handler = None
        crops.loaded.connect(self._crop_loaded)

    # -- Qt model interface --------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008, N802 -- Qt's signature
        """Return the number of cells shown."""
        return 0 if parent.isValid() else len(self.ids)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        """Return a cell's crop, tooltip, id, class or review state."""
        if not index.isValid() or index.row() >= len(self.ids):
            return None
        cell_id = self.ids[index.row()]
        # NOTE: plain arrays, because a pandas .loc per call made scrolling stutter.
        position = self.items.index.get_loc(cell_id)
        if role == Qt.ItemDataRole.DecorationRole:
            return self.crops.pixmap(cell_id, float(self._columns["row"][position]),
                                     float(self._columns["col"][position]))
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.describe(self.items.iloc[position])
        if role == CELL_ID_ROLE:
            return cell_id
        if role == CLASS_ROLE:
            return str(self._columns["class"][position])
        if role == REVIEWED_ROLE:
            return bool(self._columns["reviewed"][position])
        return None

    def flags(self, index):
        """Cells are selectable, draggable and take drops (onto their class group)."""
        base = Qt.ItemFlag.ItemIsDropEnabled
        if not index.isValid():
            return base
        return (base | Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                | Qt.ItemFlag.ItemIsDragEnabled)

    def supportedDropActions(self):  # noqa: N802 -- Qt's name
        """Return the move action: a drop moves cells to another class."""
        return Qt.DropAction.MoveAction

    def supportedDragActions(self):  # noqa: N802 -- Qt's name
        """Return the move action: a drop moves cells to another class."""
        return Qt.DropAction.MoveAction

    def mimeTypes(self) -> list[str]:  # noqa: N802 -- Qt's name
        """Return the gallery's own MIME type, a comma-separated list of cell ids."""
        return [CELLS_MIME_TYPE]

    def mimeData(self, indexes) -> QMimeData:  # noqa: N802 -- Qt's name
        """Return the dragged cells' ids."""
        return cells_mime_data(self.ids[index.row()] for index in indexes if index.isValid())

    def dropMimeData(self, data, action, row, column, parent) -> bool:  # noqa: N802
        """Move the dropped cells to the class of the cell they were dropped on."""
        cell_ids = cell_ids_from_mime(data)
        if not cell_ids or not parent.isValid() or self.drop_handler is None:
            return False
        self.drop_handler(cell_ids, self.data(parent, CLASS_ROLE))
        # False, so that Qt does not treat the drop as a row move: the store change has
        # already updated the model through the session.
        return False

    # -- updates -------------------------------------------------------------------------
    def set_cells(self, ids, items: pd.DataFrame) -> None:
        """Show the cells ``ids`` (in this order), described by ``items`` (indexed by id)."""
        new_ids = np.asarray(ids, dtype=int).tolist()
        old_items, self.items = self.items, items
        self._columns = {name: items[name].to_numpy() for name in SHOWN_COLUMNS}
        if not self.ids:
            self._reset(new_ids)
            return
        if new_ids != self.ids:
            self._remove_missing(set(new_ids))
            current = set(self.ids)
            self._reorder([cell_id for cell_id in new_ids if cell_id in current])
            self._insert_new(new_ids, current)
            self.row_of = dict(zip(self.ids, range(len(self.ids))))
        self._emit_changed(old_items)

    def _reset(self, new_ids: list[int]) -> None:
        self.beginResetModel()
        self.ids = new_ids
        self.row_of = dict(zip(new_ids, range(len(new_ids))))
        self.endResetModel()

    def _remove_missing(self, keep: set[int]) -> None:
        gone = [row for row, cell_id in enumerate(self.ids) if cell_id not in keep]
        for first, last in reversed(_runs(gone)):
            self.beginRemoveRows(QModelIndex(), first, last)
            del self.ids[first : last + 1]
            self.endRemoveRows()

    def _reorder(self, kept: list[int]) -> None:
        if kept == self.ids:
            return
        self.layoutAboutToBeChanged.emit()
        old_rows = self.persistentIndexList()
        new_row = dict(zip(kept, range(len(kept))))
        moved = [self.index(new_row[self.ids[index.row()]], 0) for index in old_rows]
        self.ids = kept
        self.changePersistentIndexList(old_rows, moved)
        self.layoutChanged.emit()

    def _insert_new(self, new_ids: list[int], present: set[int]) -> None:
        added = [row for row, cell_id in enumerate(new_ids) if cell_id not in present]
        for first, last in _runs(added):
            self.beginInsertRows(QModelIndex(), first, last)
            self.ids[first:first] = new_ids[first : last + 1]
            self.endInsertRows()

    def _emit_changed(self, old_items: pd.DataFrame) -> None:
        """Repaint the cells whose class, prediction or review state changed."""
        if old_items.empty:
            return
        shown = np.asarray(self.ids, dtype=int)
        before = old_items.index.get_indexer(shown)
        after = self.items.index.get_indexer(shown)
        known = before >= 0
        changed = ~known
        for column in ("class", "predicted_class", "reviewed"):
            old_values = old_items[column].to_numpy()[before[known]]
            new_values = self.items[column].to_numpy()[after[known]]
            changed[known] |= old_values != new_values
        for row in np.flatnonzero(changed):
            index = self.index(int(row), 0)
            self.dataChanged.emit(index, index)

    def _crop_loaded(self, cell_id: int) -> None:
        row = self.row_of.get(cell_id)
        if row is not None:
            index = self.index(row, 0)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])


def _runs(rows: list[int]) -> list[tuple[int, int]]:
    """Return the sorted ``rows`` as (first, last) runs of consecutive numbers."""
    runs: list[tuple[int, int]] = []
    for row in sorted(rows):
        if runs and row == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], row)
        else:
            runs.append((row, row))
    return runs


def cells_mime_data(cell_ids) -> QMimeData:
    """Return drag data carrying ``cell_ids`` in the gallery's MIME type."""
    data = QMimeData()
    data.setData(CELLS_MIME_TYPE, ",".join(str(int(c)) for c in cell_ids).encode("ascii"))
    return data


def cell_ids_from_mime(data) -> list[int]:
    """Return the cell ids of gallery drag data; an empty list for any other data."""
    if data is None or not data.hasFormat(CELLS_MIME_TYPE):
        return []
    text = bytes(data.data(CELLS_MIME_TYPE)).decode("ascii")
    return [int(part) for part in text.split(",") if part]
