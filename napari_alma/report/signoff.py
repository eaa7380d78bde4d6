"""Read a slide's sign-off state from a project store, whatever form the store keeps it in.

A store may keep sign-off as slide-level events (finalise, reopen) or as columns of the
``slides`` table. This module reads any table with ``slide_id``, ``action`` and ``time``
columns, or those columns of ``slides``, and reports a store with neither as "not signed
off". The connection is read-only, so a report cannot change the store.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

SIGN_ACTIONS = frozenset({"finalise", "finalize", "finalised", "finalized", "sign_off",
                          "signoff", "sign-off", "signed_off"})
REOPEN_ACTIONS = frozenset({"reopen", "reopened", "unfinalise", "unfinalize", "unsign"})
SIGNED_AT_COLUMNS = ("signed_off_at", "finalised_at", "finalized_at")
SIGNED_BY_COLUMNS = ("signed_off_by", "finalised_by", "finalized_by")


@dataclass(frozen=True)
class SignOff:
    """The reader who signed off a slide, and the time (ISO 8601, UTC)."""

    reader: str
    time: str


def read_signoff(database_path: str | Path, slide_id: str) -> SignOff | None:
    """Return the slide's current sign-off, or None when it is not (or no longer) signed off.

    The newest sign-off or reopen event decides; a reopen after the sign-off clears it.
    """
    uri = f"{Path(database_path).resolve().as_uri()}?mode=ro"
    connection = sqlite3.connect(uri, uri=True)
    try:
        events = [event for table in _event_tables(connection)
                  for event in _signoff_events(connection, table, slide_id)]
        if events:
            time, _order, action, reader = max(events)
            return SignOff(reader=reader, time=time) if action in SIGN_ACTIONS else None
        return _slide_columns(connection, slide_id)
    finally:
        connection.close()


def _columns(connection: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')}


def _event_tables(connection: sqlite3.Connection) -> list[str]:
    tables = [row[0] for row in connection.execute(
        "SELECT name FROM sqlite_master WHERE type='table'")]
    return [table for table in tables
            if {"slide_id", "action", "time"} <= _columns(connection, table)]


def _signoff_events(connection: sqlite3.Connection, table: str, slide_id: str) -> list:
    """Return (time, order, action, reader) of the table's sign-off and reopen events."""
    columns = _columns(connection, table)
    reader = "reader" if "reader" in columns else "''"
    # Two events may share a timestamp, so the log's own order breaks ties.
    order = "event_id" if "event_id" in columns else "rowid"
    actions = sorted(SIGN_ACTIONS | REOPEN_ACTIONS)
    marks = ", ".join("?" * len(actions))
    rows = connection.execute(
        f'SELECT time, {order}, LOWER(action), {reader} FROM "{table}" '
        f"WHERE slide_id=? AND LOWER(action) IN ({marks})", (slide_id, *actions),
    ).fetchall()
    return [(str(time), order_value, action, str(who or ""))
            for time, order_value, action, who in rows]


def _slide_columns(connection: sqlite3.Connection, slide_id: str) -> SignOff | None:
    columns = _columns(connection, "slides")
    signed_at = next((c for c in SIGNED_AT_COLUMNS if c in columns), None)
    if signed_at is None:
        return None
    signed_by = next((c for c in SIGNED_BY_COLUMNS if c in columns), "''")
    row = connection.execute(
        f"SELECT {signed_at}, {signed_by} FROM slides WHERE slide_id=?", (slide_id,)
    ).fetchone()
    if row is None or not row[0]:
        return None
    return SignOff(reader=str(row[1] or ""), time=str(row[0]))
