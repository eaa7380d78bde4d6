"""A slide's sign-off state as the report shows it."""

from __future__ import annotations

from dataclasses import dataclass

from napari_alma.store.project import Project
from napari_alma.store.signoff import last_signoff


@dataclass(frozen=True)
class SignOff:
    """The reader who signed off a slide, and the time (ISO 8601, UTC)."""

    reader: str
    time: str


def read_signoff(project: Project, slide_id: str) -> SignOff | None:
    """Return who finalised the slide and when, or None while it is not signed off.

    A slide reopened after its sign-off is not signed off, whatever its earlier events.
    """
    state = last_signoff(project, slide_id)
    if state is None or state["action"] != "finalise":
        return None
    return SignOff(reader=state["reader"], time=state["time"])
