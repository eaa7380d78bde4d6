-- The project store's schema as the first release wrote it (schema_version 1).
-- Migration tests build a version-1 database from it.
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
    PRIMARY KEY (slide_id, cell_id, model_version),
    FOREIGN KEY (slide_id, cell_id) REFERENCES cells(slide_id, cell_id)
);
CREATE TABLE IF NOT EXISTS events (
    event_id INTEGER PRIMARY KEY AUTOINCREMENT,
    slide_id TEXT NOT NULL,
    cell_id INTEGER NOT NULL,
    reader TEXT NOT NULL,
    time TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('label', 'review', 'add', 'delete', 'restore')),
    old_class TEXT,
    new_class TEXT,
    model_version TEXT,
    FOREIGN KEY (slide_id, cell_id) REFERENCES cells(slide_id, cell_id)
);
CREATE INDEX IF NOT EXISTS events_by_cell ON events (slide_id, cell_id, event_id);
CREATE TRIGGER IF NOT EXISTS events_append_only_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_append_only_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
