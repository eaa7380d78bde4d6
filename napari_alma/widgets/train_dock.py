"""The retrain dock: fine-tune a model on the project's labels or an export folder."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from magicgui.widgets import ComboBox, FileEdit, Image, Label, PushButton, SpinBox

from napari_alma.core.i18n import tr
from napari_alma.widgets.background import BackgroundJob
from napari_alma.widgets.dock import SessionDock
from napari_alma.widgets.model_dock import ModelEntry, list_models, set_active_model
from napari_alma.widgets.session import get_session, on_session

if TYPE_CHECKING:
    import napari

logger = logging.getLogger(__name__)

DATA_PROJECT = "project"
DATA_FOLDER = "folder"
DEVICES = ("auto", "cpu", "cuda", "mps")
# Share of the progress bar given to exporting the project's labels before training.
EXPORT_SHARE = 0.1


def run_training(project_folder: Path, export_dir: Path | None, base_model: Path | None,
                 epochs: int, device: str, progress, cancel) -> dict:
    """Export (when ``export_dir`` is None) and train a model; run off the GUI thread.

    The new model is written under a hidden name in the project's models folder and
    renamed to its version when training succeeds, so a cancelled or failed run leaves
    no version behind. It is compared with the project's active model on the same
    validation cells; activating it is left to the caller.

    Parameters
    ----------
    project_folder : Path
        The project; the worker opens its own connection (SQLite connections belong to
        the thread that opened them).
    export_dir : Path or None
        An active-learning export; None exports the project's labels first, into
        ``<project>/exports/al-<UTC time>``.
    base_model : Path or None
        The model to fine-tune; None trains from scratch.
    epochs : int
        Maximum epochs (training stops earlier when validation stops improving).
    device : str
        "auto", "cpu", "cuda" or "mps".
    progress : callable(fraction, message)
        Progress reporter, callable from this thread.
    cancel : callable() -> bool
        Checked before each training batch.

    Returns
    -------
    dict
        ``card`` (the new model's card), ``path`` (its folder), ``active_version``,
        ``better`` (True when it beats the active model) and ``reason``.
    """
    from napari_alma.learning.model import read_card
    from napari_alma.learning.predict import active_model_path
    from napari_alma.learning.train import train_model
    from napari_alma.learning.versions import activation_decision
    from napari_alma.store.project import Project

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    with Project(project_folder) as project:
        if export_dir is None:
            export_dir = _export_project(project, stamp, progress)
        active = active_model_path(project)
        pending = project.models_folder / f".training-{stamp}"
        card = train_model(export_dir, pending, from_model=base_model, device=device,
                           epochs=epochs, progress=_training_progress(progress),
                           cancel=cancel, baseline_model=active)
        final = _keep_version(pending, project.models_folder / card["version"])
        active_version = read_card(active)["version"]
    better, reason = activation_decision(card, active_version, "if-better")
    return {"card": card, "path": final, "active_version": active_version, "better": better,
            "reason": reason}


def _export_project(project, stamp: str, progress) -> Path:
    from napari_alma.learning.export import export_active_learning

    progress(0.0, "export")
    out = export_active_learning(project, project.folder / "exports" / f"al-{stamp}")
    progress(EXPORT_SHARE, "export")
    return out


def _training_progress(progress):
    """Map training's progress (0 to 1) onto the part of the bar after the export."""
    def report(fraction: float, message: str = "") -> None:
        progress(EXPORT_SHARE + (1 - EXPORT_SHARE) * fraction, message)

    return report


def _keep_version(pending: Path, final: Path) -> Path:
    import shutil

    if final.exists():
        shutil.rmtree(pending, ignore_errors=True)
        raise FileExistsError(
            f"The project already has a model version {final.name!r}; the new model was "
            "not kept. Train again after changing the labels or the export."
        )
    pending.rename(final)
    return final


class TrainDock(SessionDock):
    """Dock that retrains a model in a worker thread and offers to activate it.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose review session's project receives the new model.
    """

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(viewer, "learn_dock_train")
        lang = self.language
        self.entries: list[ModelEntry] = []

        self.data = ComboBox(label=tr("learn_data", lang), choices=[
            (tr("learn_data_project", lang), DATA_PROJECT),
            (tr("learn_data_folder", lang), DATA_FOLDER)])
        self.folder = FileEdit(mode="d", label=tr("learn_export_folder", lang), visible=False)
        # NOTE: a callable, because napari calls reset_choices() on docked containers.
        self.base = ComboBox(choices=self._base_choices, label=tr("learn_base_model", lang))
        self.epochs = SpinBox(value=20, min=1, max=500, label=tr("learn_epochs", lang))
        self.device = ComboBox(choices=list(DEVICES), value="auto",
                               label=tr("learn_device", lang))

        self.train_button = PushButton(text=tr("learn_train", lang))
        self.job = BackgroundJob(lang, self.train_button, "learn_training", "learn_cancelling",
                                 self._finished, self._failed)
        self.progress, self.status = self.job.progress, self.job.status
        self.cancel_button = self.job.cancel_button
        self.metrics = Label(value="")
        self.confusion = Image(visible=False)
        self.extend([self.data, self.folder, self.base, self.epochs, self.device,
                     self.train_button, self.progress, self.status, self.cancel_button,
                     self.metrics, self.confusion])

        self.data.changed.connect(self._show_folder)
        self.train_button.changed.connect(self.start_training)

        self.result: dict | None = None
        self.reload()
        on_session(viewer, lambda _session: self.reload())

    def reload(self) -> None:
        """List the project's models again as base models."""
        session = get_session(self.viewer)
        self.entries = list_models(session.project) if session else []
        self.base.reset_choices()

    def _base_choices(self, _widget=None) -> list[tuple[str, Path | None]]:
        choices = [(tr("model_shipped" if e.shipped else "model_project", self.language,
                       version=e.version), e.path) for e in self.entries]
        return choices + [(tr("learn_from_scratch", self.language), None)]

    def _show_folder(self, value) -> None:
        self.folder.visible = value == DATA_FOLDER

    @property
    def worker(self):
        """The running training's worker, or None."""
        return self.job.worker

    def start_training(self, *_args):
        """Start the export and training in a worker thread; return the worker."""
        session = get_session(self.viewer)
        if session is None or self.worker is not None:
            return None
        export_dir = Path(self.folder.value) if self.data.value == DATA_FOLDER else None
        self.result = None
        return self.job.start(
            run_training, session.project.folder, export_dir, self.base.value,
            int(self.epochs.value), self.device.value,
        )

    def cancel_training(self, *_args) -> None:
        """Ask the running training to stop before its next batch."""
        self.job.cancel()

    def _finished(self, result: dict) -> None:
        self.result = result
        self.metrics.value = metrics_text(result, self.language)
        self._show_confusion(result["path"])
        self.reload()
        if self.ask_activation(activation_question(result, self.language)):
            session = get_session(self.viewer)
            entry = ModelEntry(path=Path(result["path"]), version=result["card"]["version"],
                               shipped=False)
            if session is not None:
                set_active_model(session.project, entry)
                model_dock = (session.docks or {}).get("model")
                if model_dock is not None:
                    model_dock.reload()

    def _show_confusion(self, folder) -> None:
        from skimage import io

        from napari_alma.learning.plots import CONFUSION_NAME

        path = Path(folder) / CONFUSION_NAME
        if path.is_file():
            self.confusion.value = io.imread(path)[..., :3]
            self.confusion.visible = True

    def ask_activation(self, question: str) -> bool:
        """Ask the reader whether to make the new model the active one."""
        from qtpy.QtWidgets import QMessageBox

        answer = QMessageBox.question(self.native, tr("learn_dock_train", self.language),
                                      question)
        return answer == QMessageBox.StandardButton.Yes

    def _failed(self, error: Exception) -> None:
        from napari.utils.notifications import show_error, show_info

        from napari_alma.learning.train import TrainingCancelled

        if isinstance(error, TrainingCancelled):
            show_info(tr("learn_cancelled", self.language))
            return
        logger.error("Training failed: %s", error)
        show_error(tr("learn_failed", self.language, error=error))


def metrics_text(result: dict, lang: str) -> str:
    """Return the validation figures of a training result as a few lines of text."""
    metrics = result["card"].get("metrics") or {}
    if "balanced_accuracy" not in metrics:
        return tr("learn_no_validation", lang)
    lines = [tr("learn_balanced_accuracy", lang, value=f"{metrics['balanced_accuracy']:.3f}",
                n=metrics["n_test"])]
    baseline = metrics.get("baseline")
    if baseline:
        lines.append(tr("learn_baseline", lang, version=baseline["version"],
                        value=f"{baseline['balanced_accuracy']:.3f}"))
    scores = ", ".join(f"{code} {'-' if f1 is None else f'{f1:.2f}'}"
                       for code, f1 in metrics["per_class_f1"].items())
    lines.append(tr("learn_f1", lang, scores=scores))
    return "\n".join(lines)


def activation_question(result: dict, lang: str) -> str:
    """Return the question shown before activating the new model."""
    key = "learn_activate_better" if result["better"] else "learn_activate_not_better"
    return tr(key, lang, version=result["card"]["version"], active=result["active_version"])
