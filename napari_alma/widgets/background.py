"""One long job per dock, off the GUI thread, with a progress bar, a status line and cancel.

The model dock (prediction) and the retrain dock (training) share this. Each dock passes
its start button, places the job's progress bar, status line and Cancel button among its
widgets, and hands the job function to :meth:`BackgroundJob.start`. The function is
called as ``function(*args, progress, cancel, **kwargs)``, where ``progress(fraction,
message)`` may be called from the worker thread and ``cancel()`` returns True once the
reader pressed Cancel.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from magicgui.widgets import Label, ProgressBar, PushButton

from napari_alma.core.i18n import tr

PROGRESS_STEPS = 1000


class BackgroundJob:
    """The progress widgets and the worker of one dock's long job.

    Parameters
    ----------
    language : str
        Language of the Cancel button and the status texts.
    start_button : magicgui PushButton
        The button that starts the job; disabled while it runs.
    running_key, cancelling_key : str
        Message keys of the status shown while the job runs and after Cancel.
    on_returned, on_errored : callable
        Called on the GUI thread with the job's result, or with its exception.
    """

    def __init__(self, language: str, start_button: PushButton, running_key: str,
                 cancelling_key: str, on_returned: Callable, on_errored: Callable):
        self.language = language
        self.start_button = start_button
        self.running_key = running_key
        self.cancelling_key = cancelling_key
        self.on_returned = on_returned
        self.on_errored = on_errored
        self.progress = ProgressBar(value=0, min=0, max=PROGRESS_STEPS, visible=False)
        self.status = Label(value="")
        self.cancel_button = PushButton(text=tr("cancel", language), visible=False)
        self.cancel_button.changed.connect(self.cancel)
        self.worker = None
        self._cancel = threading.Event()
        self._reporter = _make_progress_reporter(self.show_progress)

    def start(self, function: Callable, *args, **kwargs):
        """Run ``function`` in a worker thread and return the worker (None if one runs)."""
        from napari.qt.threading import create_worker

        if self.worker is not None:
            return None
        self._cancel.clear()
        self.worker = create_worker(
            function, *args, self._reporter.report, self._cancel.is_set, **kwargs,
            _start_thread=False, _ignore_errors=True,
        )
        self.worker.returned.connect(self.on_returned)
        self.worker.errored.connect(self.on_errored)
        self.worker.finished.connect(self._idle)
        self._set_running(True)
        self.worker.start()
        return self.worker

    def cancel(self, *_args) -> None:
        """Ask the running job to stop at its next check."""
        self._cancel.set()
        self.status.value = tr(self.cancelling_key, self.language)

    def show_progress(self, fraction: float, message: str) -> None:
        """Show a fraction done (0-1) and a message; runs on the GUI thread."""
        self.progress.value = int(round(max(0.0, min(1.0, fraction)) * PROGRESS_STEPS))
        self.status.value = message

    def _set_running(self, running: bool) -> None:
        self.progress.visible = running
        self.cancel_button.visible = running
        self.start_button.enabled = not running
        self.progress.value = 0
        self.status.value = tr(self.running_key, self.language) if running else ""

    def _idle(self) -> None:
        self.worker = None
        self._set_running(False)


def _make_progress_reporter(slot):
    """Return a QObject whose ``report(fraction, message)`` may be called from any thread.

    The Qt signal is queued to the GUI thread, where ``slot`` updates the widgets.
    """
    from qtpy.QtCore import QObject, Signal

    class ProgressReporter(QObject):
        progressed = Signal(float, str)

        def report(self, fraction: float, message: str = "") -> None:
            self.progressed.emit(float(fraction), str(message))

    reporter = ProgressReporter()
    reporter.progressed.connect(slot)
    return reporter
