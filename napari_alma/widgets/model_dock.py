"""The model dock: pick the active model, and detect and classify the slide's cells."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from magicgui.widgets import ComboBox, Label, PushButton, SpinBox

from napari_alma.core.i18n import tr
from napari_alma.widgets.background import BackgroundJob
from napari_alma.widgets.dock import SessionDock
from napari_alma.widgets.session import get_session, on_session

if TYPE_CHECKING:
    import napari

logger = logging.getLogger(__name__)

ACTIVE_MODEL_KEY = "active_model"
SCOPE_SLIDE = "__slide__"
SCOPE_VIEW = "__view__"


@dataclass(frozen=True)
class ModelEntry:
    """A model folder a project can use: the shipped default or a trained version."""

    path: Path
    version: str
    shipped: bool


def list_models(project) -> list[ModelEntry]:
    """Return the shipped default model (when installed) and the project's model versions.

    A folder under ``project.models_folder`` without a valid ``card.json`` is skipped and
    logged, so one broken folder does not hide the others.
    """
    from napari_alma.learning.model import ModelError, default_model_path, read_card

    candidates = [(default_model_path(), True)] if default_model_path().is_dir() else []
    if project.models_folder.is_dir():
        folders = sorted(p for p in project.models_folder.iterdir() if p.is_dir())
        candidates += [(folder, False) for folder in folders if not folder.name.startswith(".")]
    entries = []
    for folder, shipped in candidates:
        try:
            card = read_card(folder)
        except ModelError as err:
            logger.warning("Skipping model folder %s: %s", folder, err)
            continue
        entries.append(ModelEntry(path=folder, version=card["version"], shipped=shipped))
    return entries


def active_model(project, entries: list[ModelEntry]) -> ModelEntry | None:
    """Return the entry the project uses: its ``active_model`` setting, else the default."""
    chosen = project.get_meta(ACTIVE_MODEL_KEY)
    for entry in entries:
        if chosen and Path(chosen) == entry.path:
            return entry
    return next((entry for entry in entries if entry.shipped), entries[0] if entries else None)


def set_active_model(project, entry: ModelEntry) -> None:
    """Store ``entry`` as the project's active model."""
    project.set_meta(ACTIVE_MODEL_KEY, str(entry.path))


def run_prediction(folder: Path, slide_path: str, model_dir: Path | None, progress, cancel,
                   regions=None, bald_passes: int = 0):
    """Predict a slide with a project connection of its own; run off the GUI thread.

    SQLite connections belong to the thread that opened them, so the worker opens the
    project again instead of using the session's connection.

    Parameters
    ----------
    regions : list of (r0, c0, r1, c1), optional
        Level-0 areas to predict one after the other; by default the whole slide.
    bald_passes : int
        Monte-Carlo dropout passes for BALD scores; 0 skips them.

    Returns
    -------
    dict
        ``new`` and ``matched`` cell ids over all the regions, and ``regions``.
    """
    from napari_alma.learning.predict import predict_slide
    from napari_alma.store.project import Project

    areas = list(regions) if regions else [None]
    totals = {"new": [], "matched": [], "regions": len(areas)}
    with Project(folder) as project:
        for index, region in enumerate(areas):
            result = predict_slide(project, slide_path, model_dir=model_dir,
                                   progress=_region_progress(progress, index, len(areas)),
                                   cancel=cancel, region=region, bald_passes=bald_passes)
            totals["new"] += result["new"]
            totals["matched"] += result["matched"]
    return totals


def _region_progress(progress, index: int, count: int):
    """Map one region's progress (0 to 1) onto its share of the whole run."""
    def report(fraction: float, message: str = "") -> None:
        progress((index + fraction) / count, message)

    return report


class ModelDock(SessionDock):
    """Dock listing the models, storing the active one and running a prediction.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose review session's slide is predicted.
    """

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(viewer, "dock_model")
        lang = self.language
        self.entries: list[ModelEntry] = []
        # NOTE: choices are a callable because napari calls reset_choices() on docked
        # magicgui containers (when docking and on layer changes), which would empty a
        # fixed list.
        self.models = ComboBox(choices=self._choices, label=tr("model", lang))
        self.active = Label(value="")
        self.switch_button = PushButton(text=tr("switch_model", lang))
        self.scope = ComboBox(choices=self._scope_choices, label=tr("learn_scope", lang))
        self.bald_passes = SpinBox(value=0, min=0, max=50, label=tr("learn_bald_passes", lang),
                                   tooltip=tr("learn_bald_tooltip", lang))
        self.predict_button = PushButton(text=tr("predict", lang))
        self.job = BackgroundJob(lang, self.predict_button, "predict_running",
                                 "predict_cancelling", self._finished, self._failed)
        self.progress, self.status = self.job.progress, self.job.status
        self.cancel_button = self.job.cancel_button
        self.extend([self.models, self.active, self.switch_button, self.scope,
                     self.bald_passes, self.predict_button,
                     self.progress, self.status, self.cancel_button])
        self.switch_button.changed.connect(self.switch_model)
        self.predict_button.changed.connect(self.start_prediction)
        self.reload()
        on_session(viewer, lambda _session: self.reload())

    def reload(self) -> None:
        """List the models again and show which one is active."""
        session = get_session(self.viewer)
        if session is None:
            self.active.value = tr("no_session", self.language)
            return
        self.entries = list_models(session.project)
        self.models.reset_choices()
        current = active_model(session.project, self.entries)
        if current is not None:
            self.models.value = current
        self.active.value = tr("active_model", self.language,
                               version=current.version if current else "-")

    def _choices(self, _widget=None) -> list[tuple[str, ModelEntry]]:
        return [(self._entry_text(entry), entry) for entry in self.entries]

    def _scope_choices(self, _widget=None) -> list[tuple[str, str]]:
        """Return the areas to predict: the whole slide, the view, each shapes layer."""
        from napari.layers import Shapes

        choices = [(tr("learn_scope_slide", self.language), SCOPE_SLIDE),
                   (tr("learn_scope_view", self.language), SCOPE_VIEW)]
        for layer in self.viewer.layers:
            if isinstance(layer, Shapes):
                choices.append((tr("learn_scope_shapes", self.language, name=layer.name),
                                layer.name))
        return choices

    def prediction_regions(self, session) -> list | None:
        """Return the level-0 regions the scope names; None means the whole slide.

        Raises
        ------
        ValueError
            When the chosen shapes layer has no shape on the slide, or the view shows none
            of it.
        """
        from napari_alma.widgets.regions import shape_regions, view_region

        scope = self.scope.value or SCOPE_SLIDE
        if scope == SCOPE_SLIDE:
            return None
        if scope == SCOPE_VIEW:
            return [view_region(self.viewer, session.image_layer)]
        regions = shape_regions(self.viewer.layers[scope], session.image_layer)
        if not regions:
            raise ValueError(tr("learn_no_shapes", self.language, name=scope))
        return regions

    def _entry_text(self, entry: ModelEntry) -> str:
        key = "model_shipped" if entry.shipped else "model_project"
        return tr(key, self.language, version=entry.version)

    def switch_model(self, *_args) -> None:
        """Store the model chosen in the list as the project's active model."""
        session = get_session(self.viewer)
        if session is None or self.models.value is None:
            return
        set_active_model(session.project, self.models.value)
        self.reload()

    @property
    def worker(self):
        """The running prediction's worker, or None."""
        return self.job.worker

    def start_prediction(self, *_args):
        """Run the active model on the slide in a worker thread; return the worker."""
        session = get_session(self.viewer)
        if session is None or self.worker is not None:
            return None
        try:
            regions = self.prediction_regions(session)
        except (ValueError, KeyError) as err:
            from napari.utils.notifications import show_error

            show_error(tr("predict_failed", self.language, error=err))
            return None
        entry = active_model(session.project, self.entries)
        return self.job.start(
            run_prediction, session.project.folder, session.slide["path"],
            entry.path if entry else None,
            regions=regions, bald_passes=_bald_passes(self.bald_passes.value),
        )

    def cancel_prediction(self, *_args) -> None:
        """Ask the running prediction to stop before its next tile."""
        self.job.cancel()

    def _finished(self, result: dict) -> None:
        from napari.utils.notifications import show_info

        session = get_session(self.viewer)
        if session is not None:
            session.refresh()
        show_info(tr("predict_done", self.language, new=len(result["new"]),
                     matched=len(result["matched"])))

    def _failed(self, error: Exception) -> None:
        from napari.utils.notifications import show_error, show_info

        from napari_alma.learning.predict import PredictionCancelled

        session = get_session(self.viewer)
        if session is not None:
            session.refresh()
        if isinstance(error, PredictionCancelled):
            show_info(tr("predict_cancelled", self.language))
            return
        logger.error("Prediction failed: %s", error)
        show_error(tr("predict_failed", self.language, error=error))

def _bald_passes(value) -> int:
    """Return the Monte-Carlo passes to run: 0 (off), else at least the 2 BALD needs."""
    value = int(value)
    return 0 if value <= 0 else max(value, 2)
