"""The SQLite schema of a project store, its version, and the migrations between versions.

Version 2 adds, over the first release's version 1:

- cell events ``adjudicate`` (the agreed class after two readers disagreed) and ``unlabel``
  (a label withdrawn, so the cell is unreviewed again), and the column ``undoes`` naming
  the event that an undo or redo reverts;
- the append-only ``slide_events`` log for actions on a whole slide (sign-off, reopening,
  pixel size, case, second reads);
- the column ``predictions.bald``: the BALD score from Monte-Carlo dropout, when computed.
"""

SCHEMA_VERSION = 2

CELL_ACTIONS = ("label", "review", "add", "delete", "restore", "adjudicate", "unlabel")
SLIDE_ACTIONS = (
    "finalise", "reopen", "set_mpp", "set_case", "start_second_read", "end_second_read",
)


def _append_only(table: str) -> str:
    return f"""
CREATE TRIGGER IF NOT EXISTS {table}_append_only_update BEFORE UPDATE ON {table}
BEGIN SELECT RAISE(ABORT, 'the {table} log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS {table}_append_only_delete BEFORE DELETE ON {table}
BEGIN SELECT RAISE(ABORT, 'the {table} log is append-only'); END;
"""


def _events_table(name: str) -> str:
    actions = ", ".join(f"'{action}'" for action in CELL_ACTIONS)
    return f"""
CREATE TABLE IF NOT EXISTS {name} (
    event_id INTEGER PRIMARY KEY AUTOINCREMENT,
    slide_id TEXT NOT NULL,
    cell_id INTEGER NOT NULL,
    reader TEXT NOT NULL,
    time TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ({actions})),
    old_class TEXT,
    new_class TEXT,
    model_version TEXT,
    undoes INTEGER,
    FOREIGN KEY (slide_id, cell_id) REFERENCES cells(slide_id, cell_id)
);
"""


_SLIDE_ACTIONS_SQL = ", ".join(f"'{action}'" for action in SLIDE_ACTIONS)

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS slides (
    slide_id TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    fingerprint TEXT NOT NULL UNIQUE,
    mpp REAL,
    mpp_source TEXT,
    rows INTEGER,
    cols INTEGER,
    case_id TEXT,
    primary_reader TEXT,
    added_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cells (
    slide_id TEXT NOT NULL REFERENCES slides(slide_id),
    cell_id INTEGER NOT NULL,
    row REAL NOT NULL,
    col REAL NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('model', 'added')),
    created_at TEXT NOT NULL,
    PRIMARY KEY (slide_id, cell_id)
);
CREATE TABLE IF NOT EXISTS predictions (
    slide_id TEXT NOT NULL,
    cell_id INTEGER NOT NULL,
    model_version TEXT NOT NULL,
    class TEXT NOT NULL,
    confidence REAL NOT NULL,
    probabilities TEXT NOT NULL,
    created_at TEXT NOT NULL,
    bald REAL,
    PRIMARY KEY (slide_id, cell_id, model_version),
    FOREIGN KEY (slide_id, cell_id) REFERENCES cells(slide_id, cell_id)
);
{_events_table("events")}
CREATE INDEX IF NOT EXISTS events_by_cell ON events (slide_id, cell_id, event_id);
{_append_only("events")}
CREATE TABLE IF NOT EXISTS slide_events (
    event_id INTEGER PRIMARY KEY AUTOINCREMENT,
    slide_id TEXT NOT NULL REFERENCES slides(slide_id),
    reader TEXT NOT NULL,
    time TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ({_SLIDE_ACTIONS_SQL})),
    detail TEXT NOT NULL DEFAULT '{{}}'
);
CREATE INDEX IF NOT EXISTS slide_events_by_slide ON slide_events (slide_id, event_id);
{_append_only("slide_events")}
"""

# Statements that take a store from version N to N + 1, run in one transaction. SQLite
# cannot alter a CHECK constraint, so the events table is rebuilt under a new name.
MIGRATIONS: dict[int, list[str]] = {
    1: [
        "ALTER TABLE predictions ADD COLUMN bald REAL",
        _events_table("events_v2"),
        "INSERT INTO events_v2 (event_id, slide_id, cell_id, reader, time, action, old_class,"
        " new_class, model_version) SELECT event_id, slide_id, cell_id, reader, time, action,"
        " old_class, new_class, model_version FROM events ORDER BY event_id",
        "DROP TABLE events",
        "ALTER TABLE events_v2 RENAME TO events",
    ],
}
