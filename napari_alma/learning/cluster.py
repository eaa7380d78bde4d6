"""Predict many slides on a dask.distributed cluster, storing the results from the client.

Each worker opens its slide, detects and classifies the cells
(:func:`napari_alma.learning.predict.analyse_slide`) and sends back plain arrays. Only
the calling process writes to the project, one slide per transaction, because a SQLite
file takes one writer at a time and its connections must not cross threads or machines.

The workers read the slide files and the model folder by the paths the client gives, so
on a cluster of several machines those paths must be on a shared file system.
``distributed`` is an optional dependency (``pip install napari-alma[distributed]``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from napari_alma.learning.model import check_model_scheme, read_card
from napari_alma.learning.predict import (
    PredictionCancelled,
    Progress,
    active_model_path,
    analyse_slide,
    store_analysis,
)
from napari_alma.store.project import Project

logger = logging.getLogger(__name__)


def predict_on_cluster(
    project: Project,
    slide_paths: Sequence[str | Path],
    scheduler,
    model_dir: str | Path | None = None,
    region: tuple[int, int, int, int] | None = None,
    device: str = "auto",
    bald_passes: int = 0,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
) -> list[dict]:
    """Predict ``slide_paths`` on the workers of ``scheduler`` and store them in ``project``.

    Parameters
    ----------
    project : Project
        The project that receives the cells; written by this process only.
    slide_paths : sequence of str or Path
        The slides, each readable by the workers under the same path.
    scheduler : str or distributed.Client
        A scheduler address such as ``tcp://10.0.0.5:8786``, or a connected client.
    model_dir : str or Path, optional
        A model folder readable by the workers; by default the project's active model.
    region, device, bald_passes
        As for :func:`napari_alma.learning.predict.predict_slide`, for every slide.
    progress : callable(fraction, message), optional
        Called each time a slide is stored.
    cancel : callable() -> bool, optional
        Checked whenever a slide finishes; when it returns True, the slides still running
        are cancelled and :class:`PredictionCancelled` is raised. Slides stored before
        stay stored.

    Returns
    -------
    list of dict
        One summary per slide (as :func:`predict_slide` returns), in the order given.
    """
    model_dir = Path(active_model_path(project, model_dir)).resolve()
    check_model_scheme(read_card(model_dir), project.scheme, model_dir)
    slides = [_register(project, path) for path in slide_paths]
    client, owned = _client(scheduler)
    try:
        futures = {
            client.submit(analyse_slide, str(path), str(model_dir), mpp=mpp, region=region,
                          device=device, bald_passes=bald_passes, pure=False): index
            for index, (path, _, mpp) in enumerate(slides)
        }
        return _collect(project, slides, futures, progress, cancel)
    finally:
        if owned:
            client.close()


def _client(scheduler):
    """Return (client, owned): a new client for an address, or the client given."""
    try:
        from distributed import Client
    except ImportError as err:
        raise RuntimeError(
            "Predicting on a cluster needs the 'distributed' package; install it with "
            "`pip install napari-alma[distributed]`."
        ) from err
    if isinstance(scheduler, Client):
        return scheduler, False
    return Client(scheduler), True


def _register(project: Project, path) -> tuple[Path, str, float | None]:
    """Register a slide in the client; return its path, id and stored µm/px (or None)."""
    from napari_alma.slides.reader import fingerprint, open_slide

    path = Path(path).resolve()
    slide = open_slide(path)
    slide_id = project.register_slide(path, fingerprint(path), slide.shape, slide.mpp,
                                      "metadata" if slide.mpp else None)
    stored = project.slide(slide_id)["mpp"]
    return path, slide_id, (float(stored) if stored else None)


def _collect(project: Project, slides, futures: dict, progress, cancel) -> list[dict]:
    from distributed import as_completed

    results: list[dict | None] = [None] * len(slides)
    pending = as_completed(list(futures))
    for done, future in enumerate(pending, start=1):
        index = futures[future]
        path, slide_id, _ = slides[index]
        results[index] = _store(project, slide_id, future.result())
        logger.info("Stored slide %s (%s) from the cluster", slide_id, path.name)
        if progress is not None:
            progress(done / len(slides), f"slide {done}/{len(slides)}: {path.name}")
        if cancel is not None and cancel() and done < len(slides):
            for other in futures:
                other.cancel()
            raise PredictionCancelled(
                f"Cluster prediction cancelled after {done} of {len(slides)} slides."
            )
    return results


def _store(project: Project, slide_id: str, result: dict) -> dict:
    if result["mpp_estimated"] and not project.slide(slide_id)["mpp"]:
        project.set_mpp(slide_id, result["mpp"], "estimated")
    return store_analysis(project, slide_id, result)
