"""Model versions of a project: keep every trained version, activate one by a rule."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from napari_alma.learning.model import read_card
from napari_alma.learning.predict import active_model_path
from napari_alma.store.project import Project

logger = logging.getLogger(__name__)

ACTIVE_MODEL_KEY = "active_model"
ACTIVATE_POLICIES = ("if-better", "always", "never")


def register_model(project: Project, model_dir, activate: str = "if-better") -> dict:
    """Copy a trained model folder into the project and activate it according to a rule.

    Every version stays in ``project.models_folder``, so the reader can switch back.

    Parameters
    ----------
    project : Project
        The project that keeps the version.
    model_dir : str or Path
        The trained model folder.
    activate : {"if-better", "always", "never"}
        "if-better" activates the model only when its validation balanced accuracy beats
        the active model's on the same validation cells (``metrics.baseline`` of its card).

    Returns
    -------
    dict
        ``version``, ``path`` (in the project), ``activated`` (bool) and ``reason``.
    """
    if activate not in ACTIVATE_POLICIES:
        raise ValueError(f"Unknown activation rule {activate!r}; use one of "
                         f"{', '.join(ACTIVATE_POLICIES)}.")
    model_dir = Path(model_dir)
    card = read_card(model_dir)
    target = _copy_into(project, model_dir, card["version"])
    active_version = read_card(active_model_path(project))["version"]
    activated, reason = activation_decision(card, active_version, activate)
    if activated:
        project.set_meta(ACTIVE_MODEL_KEY, str(target.resolve()))
    logger.info("Model %s stored in %s; %s", card["version"], target, reason)
    return {"version": card["version"], "path": str(target), "activated": activated,
            "reason": reason}


def _copy_into(project: Project, model_dir: Path, version: str) -> Path:
    target = project.models_folder / version
    if model_dir.resolve() == target.resolve():
        return target
    if target.exists():
        raise FileExistsError(
            f"Project {project.folder} already has a model version {version!r}; "
            "train again with another --version."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{version}.copy")
    shutil.rmtree(temp, ignore_errors=True)
    shutil.copytree(model_dir, temp)
    temp.rename(target)
    return target


def activation_decision(card: dict, active_version: str, rule: str) -> tuple[bool, str]:
    """Return whether to activate the model of ``card``, and why, in one sentence."""
    if rule == "always":
        return True, "activated as requested"
    if rule == "never":
        return False, f"stored, not activated (the active model stays {active_version})"
    metrics = card.get("metrics") or {}
    baseline = metrics.get("baseline") or {}
    if "balanced_accuracy" not in metrics or baseline.get("version") != active_version:
        return False, (f"stored, not activated: it was not compared with the active model "
                       f"{active_version} on its validation cells")
    new, old = metrics["balanced_accuracy"], baseline["balanced_accuracy"]
    if new > old:
        return True, (f"activated: validation balanced accuracy {new:.3f} beats "
                      f"{old:.3f} of {active_version}")
    return False, (f"stored, not activated: validation balanced accuracy {new:.3f} does "
                   f"not beat {old:.3f} of {active_version}")
