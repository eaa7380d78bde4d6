"""The review-queue dock: queue order and progress, undo and redo, and the sign-off."""

from __future__ import annotations

from typing import TYPE_CHECKING

from magicgui.widgets import ComboBox, Container, FloatSpinBox, Label, LineEdit, PushButton

from napari_alma.core import review_queue
from napari_alma.core.counting import DEFAULT_TARGET
from napari_alma.core.i18n import tr
from napari_alma.widgets import desk, keys
from napari_alma.widgets.dock import SessionDock
from napari_alma.widgets.session import get_session, on_session

if TYPE_CHECKING:
    import napari

TARGETS = (300, 500)


class QueueDock(SessionDock):
    """Dock to walk the cells in review order, undo changes and sign off the slide.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose review session the dock acts on.
    """

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(viewer, "review_dock_queue")
        # The fields that have a label sit in their own containers; the rest span the dock.
        self.labels = False
        lang = self.language
        self.order = ComboBox(label=tr("review_order", lang),
                              choices=self._order_choices(review_queue.STRATEGIES[:3]))
        self.order.changed.connect(self._set_order)
        self.threshold = FloatSpinBox(
            label=tr("review_threshold", lang), min=0.0, max=1.0, step=0.05,
            value=review_queue.DEFAULT_CONFIDENCE_THRESHOLD,
        )
        self.threshold.changed.connect(self._set_threshold)
        self.progress = Label(value="")
        self.previous_button = self._button("review_previous", desk.go_to_previous)
        self.next_button = self._button("review_next", desk.go_to_next)
        self.undo_button = self._button("review_undo", desk.undo_last)
        self.redo_button = self._button("review_redo", desk.redo_last)
        self.target = ComboBox(label=tr("target", lang), choices=TARGETS, value=DEFAULT_TARGET)
        self.signoff_state = Label(value="")
        self.finalise_button = self._button("review_finalise", self._finalise)
        self.reason = LineEdit(label=tr("review_reopen_reason", lang))
        self.reopen_button = self._button("review_reopen", self._reopen)
        self.keys_help = Label(value=tr("review_desk_keys_help", lang))
        for label in (self.progress, self.signoff_state, self.keys_help):
            label.native.setWordWrap(True)
        self.extend([
            Container(widgets=[self.order, self.threshold]),
            self.progress,
            _row(self.previous_button, self.next_button),
            _row(self.undo_button, self.redo_button),
            Container(widgets=[self.target]),
            self.signoff_state, self.finalise_button,
            Container(widgets=[self.reason]), self.reopen_button,
            self.keys_help,
        ])
        session = get_session(viewer)
        if session is not None:
            self._attach(session)
        on_session(viewer, self._attach)

    def _order_choices(self, strategies) -> list[tuple[str, str]]:
        return [(tr(f"review_order_{s}", self.language), s) for s in strategies]

    def _button(self, text_key: str, action) -> PushButton:
        button = PushButton(text=tr(text_key, self.language))
        button.changed.connect(lambda: self._run(action))
        return button

    def _run(self, action, *args):
        session = get_session(self.viewer)
        if session is None:
            from napari.utils.notifications import show_info

            show_info(tr("no_session", self.language))
            return None
        return keys.run_action(session, action, session, *args)

    def _attach(self, session) -> None:
        strategies = review_queue.available_strategies(desk.queue_of(session).table())
        self.order.choices = self._order_choices(strategies)
        self.order.value = desk.queue_of(session).strategy
        session.connect(self.refresh)
        self.refresh()

    def _set_order(self, strategy: str) -> None:
        session = get_session(self.viewer)
        if session is not None and strategy:
            desk.queue_of(session).set_strategy(strategy)

    def _set_threshold(self, value: float) -> None:
        session = get_session(self.viewer)
        if session is not None:
            desk.queue_of(session).threshold = float(value)
            self.refresh()

    def _finalise(self, session) -> int:
        return desk.finalise_slide(session, int(self.target.value), float(self.threshold.value))

    def _reopen(self, session) -> int:
        event_id = desk.reopen_slide(session, self.reason.value)
        self.reason.value = ""
        return event_id

    def refresh(self, *_args) -> None:
        """Show the review progress and the sign-off state of the session's slide."""
        session = get_session(self.viewer)
        if session is None or session.cells_layer is None:
            self.progress.value = tr("no_session", self.language)
            return
        progress = desk.queue_of(session).progress()
        self.progress.value = tr(
            "review_progress", self.language, reviewed=progress.reviewed, total=progress.total,
            below=progress.below_threshold, threshold=f"{progress.threshold:.2f}",
        )
        self.signoff_state.value = desk.signoff_text(session)


def _row(*buttons: PushButton) -> Container:
    row = Container(widgets=list(buttons), layout="horizontal", labels=False)
    row.margins = (0, 0, 0, 0)
    return row
