"""The project store: slides, cells, model predictions and the append-only event log.

A project is a folder holding ``alma.sqlite`` and a ``models/`` folder. Human labels are
never stored as cell attributes: they are derived from the event log, and predictions live
in their own table, so running a model again never overwrites a human label.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from napari_alma.core.counting import Differential, count_differential
from napari_alma.core.scheme import ClassScheme, load_scheme
from napari_alma.store.labels import derive_cell_table, effective_labels, match_existing
from napari_alma.store.schema import MIGRATIONS, SCHEMA, SCHEMA_VERSION, SLIDE_ACTIONS

logger = logging.getLogger(__name__)

DATABASE_NAME = "alma.sqlite"


class StoreError(RuntimeError):
    """The project store cannot be opened or a change cannot be stored."""


def utc_now() -> str:
    """Return the current UTC time as ISO 8601 with microseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def default_reader() -> str:
    """Return the operating-system user name, the reader recorded by default."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class Project:
    """A project folder and its SQLite store.

    Parameters
    ----------
    folder : str or Path
        The project folder; created with its database when missing.
    scheme : ClassScheme, optional
        Class scheme used to validate labels; by default the one the project was created
        with (bone marrow for a new project).
    """

    def __init__(self, folder: str | Path, scheme: ClassScheme | None = None):
        self.folder = Path(folder)
        self.database_path = self.folder / DATABASE_NAME
        self._connection = self._connect()
        self.scheme = scheme or load_scheme(self.get_meta("scheme") or "bone_marrow")
        if self.get_meta("scheme") is None:
            self.set_meta("scheme", self.scheme.name)

    # -- connection ---------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.database_path, timeout=30.0, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA foreign_keys=ON")
            version = self._stored_version(connection)
            if version is not None and version > SCHEMA_VERSION:
                connection.close()
                raise StoreError(
                    f"{self.database_path} was written by a newer napari-alma (store schema "
                    f"{version}, this version reads up to {SCHEMA_VERSION}). "
                    "Upgrade napari-alma."
                )
            if version is not None and version < SCHEMA_VERSION:
                self._migrate(connection, version)
            connection.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as err:
            raise StoreError(
                f"Cannot open the project store {self.database_path}: {err}. "
                "Check that the folder exists, is writable and is not on a full disk."
            ) from err
        self._check_schema_version(connection)
        return connection

    @staticmethod
    def _check_schema_version(connection: sqlite3.Connection) -> None:
        """Record the schema version in a new store."""
        connection.execute(
            "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
        )

    @staticmethod
    def _stored_version(connection: sqlite3.Connection) -> int | None:
        """Return the schema version of an existing store, or None for a new one."""
        has_meta = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
        ).fetchone()
        if not has_meta:
            return None
        row = connection.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row else None

    def _migrate(self, connection: sqlite3.Connection, version: int) -> None:
        """Bring a store written by an older release up to ``SCHEMA_VERSION``.

        A consistent copy of the old database is kept beside it first, and every step runs
        in one transaction, so a failed migration leaves the store as it was.
        """
        backup_path = self.database_path.with_name(f"{DATABASE_NAME}.schema-{version}.bak")
        if not backup_path.exists():
            with sqlite3.connect(backup_path) as backup:
                connection.backup(backup)
            backup.close()
        logger.info("Migrating %s from schema %d to %d (copy kept at %s)",
                    self.database_path, version, SCHEMA_VERSION, backup_path)
        connection.execute("PRAGMA foreign_keys=OFF")
        connection.execute("BEGIN IMMEDIATE")
        try:
            for step in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[step]:
                    connection.execute(statement)
            connection.execute(
                "UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),)
            )
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        finally:
            connection.execute("PRAGMA foreign_keys=ON")

    @contextmanager
    def transaction(self):
        """Run the block in one immediate transaction, committed (durably) on exit."""
        try:
            self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            raise StoreError(f"Cannot write to {self.database_path}: {err}") from err
        try:
            yield self._connection
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        try:
            self._connection.execute("COMMIT")
        except sqlite3.Error as err:
            self._connection.execute("ROLLBACK")
            raise StoreError(
                f"The change was not saved to {self.database_path}: {err}. "
                "Nothing stored before was changed; free disk space or fix permissions and retry."
            ) from err

    def close(self) -> None:
        """Close the database connection."""
        self._connection.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def get_meta(self, key: str) -> str | None:
        """Return a project setting, or None."""
        row = self._connection.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        """Store a project setting."""
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    @property
    def models_folder(self) -> Path:
        """Folder holding the model versions trained for this project."""
        return self.folder / "models"

    # -- slides -------------------------------------------------------------------------
    def register_slide(
        self,
        path: str | Path,
        fingerprint: str,
        shape: tuple[int, int],
        mpp: float | None = None,
        mpp_source: str | None = None,
        case_id: str | None = None,
    ) -> str:
        """Add a slide, or find it by content fingerprint; return its pseudonymous id.

        The id is derived from the fingerprint, never from the file name, so exports can
        carry it without revealing the patient or the file.
        """
        row = self._connection.execute(
            "SELECT slide_id FROM slides WHERE fingerprint=?", (fingerprint,)
        ).fetchone()
        if row:
            with self.transaction() as db:
                db.execute("UPDATE slides SET path=? WHERE slide_id=?", (str(path), row[0]))
            return row[0]
        slide_id = "S-" + hashlib.sha256(fingerprint.encode()).hexdigest()[:10]
        with self.transaction() as db:
            db.execute(
                "INSERT INTO slides (slide_id, path, fingerprint, mpp, mpp_source, rows, cols,"
                " case_id, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (slide_id, str(path), fingerprint, mpp, mpp_source, int(shape[0]),
                 int(shape[1]), case_id, utc_now()),
            )
        return slide_id

    def slides(self) -> pd.DataFrame:
        """Return one row per slide."""
        return pd.read_sql_query("SELECT * FROM slides ORDER BY added_at", self._connection)

    def slide(self, reference: str | Path) -> dict:
        """Return a slide's row, found by id or by file path.

        Raises
        ------
        StoreError
            When no slide of the project has that id or path.
        """
        reference = str(reference)
        row = self._connection.execute(
            "SELECT * FROM slides WHERE slide_id=? OR path=? OR path=?",
            (reference, reference, str(Path(reference).resolve())),
        ).fetchone()
        if row is None:
            raise StoreError(
                f"No slide {reference!r} in project {self.folder}. Run `napari-alma predict "
                f"SLIDE --project {self.folder}` first, or give a slide id listed by "
                f"`napari-alma count {self.folder} --list`."
            )
        return self._slide_row(row)

    def slide_by_fingerprint(self, fingerprint: str) -> dict | None:
        """Return the slide whose file has this content fingerprint, or None."""
        row = self._connection.execute(
            "SELECT * FROM slides WHERE fingerprint=?", (fingerprint,)
        ).fetchone()
        return self._slide_row(row) if row else None

    def _slide_row(self, row: tuple) -> dict:
        columns = [d[0] for d in self._connection.execute("SELECT * FROM slides").description]
        return dict(zip(columns, row))

    def set_mpp(
        self, slide_id: str, mpp: float, source: str = "user", reader: str | None = None
    ) -> None:
        """Store a slide's µm per level-0 pixel and where it came from, and log the change."""
        if not 0.01 <= mpp <= 10:
            raise ValueError(f"Pixel size {mpp} µm/px is outside the plausible 0.01-10 µm/px.")
        with self.transaction() as db:
            db.execute(
                "UPDATE slides SET mpp=?, mpp_source=? WHERE slide_id=?", (mpp, source, slide_id)
            )
            db.execute(
                "INSERT INTO slide_events (slide_id, reader, time, action, detail)"
                " VALUES (?, ?, ?, 'set_mpp', ?)",
                (slide_id, reader or default_reader(), utc_now(),
                 json.dumps({"mpp": mpp, "source": source})),
            )

    # -- cells and predictions -----------------------------------------------------------
    def add_predictions(
        self,
        slide_id: str,
        positions: np.ndarray,
        probabilities: np.ndarray,
        classes: Sequence[str],
        model_version: str,
        radius: float,
        bald: np.ndarray | None = None,
    ) -> dict[str, list[int]]:
        """Store a model's output for a slide without duplicating cells.

        Parameters
        ----------
        positions : (N, 2) float ndarray
            Detected cells, (row, col) in level-0 pixels.
        probabilities : (N, K) float ndarray
            Class probabilities, columns in the order of ``classes``.
        classes : sequence of str
            The model's class codes.
        radius : float
            A detection within this distance (level-0 pixels) of an existing cell is that
            cell re-classified; farther ones become new cells.
        bald : (N,) float ndarray, optional
            BALD scores from Monte-Carlo dropout, stored with the predictions.

        Returns
        -------
        dict
            ``{"new": [cell ids], "matched": [cell ids]}``.
        """
        self.scheme.check_model_classes(list(classes), f"Model {model_version}")
        positions = np.asarray(positions, dtype=float).reshape(-1, 2)
        probabilities = np.asarray(probabilities, dtype=float).reshape(len(positions), len(classes))
        bald_scores = [None] * len(positions) if bald is None else np.asarray(bald, float).tolist()
        existing = self._cell_positions(slide_id)
        matched_ids = match_existing(existing, positions, radius)
        now = utc_now()
        result: dict[str, list[int]] = {"new": [], "matched": []}
        with self.transaction() as db:
            next_id = self._next_cell_id(db, slide_id)
            rows = zip(positions, probabilities, matched_ids, bald_scores)
            for position, probs, match, bald_score in rows:
                if match is None:
                    cell_id, next_id = next_id, next_id + 1
                    db.execute(
                        "INSERT INTO cells VALUES (?, ?, ?, ?, 'model', ?)",
                        (slide_id, cell_id, float(position[0]), float(position[1]), now),
                    )
                    result["new"].append(cell_id)
                else:
                    cell_id = match
                    result["matched"].append(cell_id)
                best = int(np.argmax(probs))
                db.execute(
                    "INSERT OR REPLACE INTO predictions (slide_id, cell_id, model_version,"
                    " class, confidence, probabilities, created_at, bald)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (slide_id, cell_id, model_version, classes[best], float(probs[best]),
                     json.dumps(dict(zip(classes, np.round(probs, 5).tolist()))), now,
                     bald_score),
                )
        return result

    def _cell_positions(self, slide_id: str) -> pd.DataFrame:
        return pd.read_sql_query(
            "SELECT cell_id, row, col FROM cells WHERE slide_id=?", self._connection,
            params=(slide_id,),
        )

    @staticmethod
    def _next_cell_id(db: sqlite3.Connection, slide_id: str) -> int:
        row = db.execute("SELECT MAX(cell_id) FROM cells WHERE slide_id=?", (slide_id,))
        current = row.fetchone()[0]
        return 1 if current is None else int(current) + 1

    # -- human actions --------------------------------------------------------------------
    def label_cells(
        self, slide_id: str, cell_ids: Iterable[int], code: str, reader: str | None = None
    ) -> int:
        """Record ``reader`` assigning class ``code`` to cells; return the number changed."""
        self._check_code(code)
        return self._record(slide_id, cell_ids, "label", reader, new_class=code)

    def review_cells(
        self, slide_id: str, cell_ids: Iterable[int], reader: str | None = None
    ) -> int:
        """Record ``reader`` confirming the class each cell shows now."""
        return self._record(slide_id, cell_ids, "review", reader)

    def delete_cells(
        self, slide_id: str, cell_ids: Iterable[int], reader: str | None = None
    ) -> int:
        """Record ``reader`` removing false detections; the rows stay for the audit trail."""
        return self._record(slide_id, cell_ids, "delete", reader)

    def restore_cells(
        self, slide_id: str, cell_ids: Iterable[int], reader: str | None = None
    ) -> int:
        """Undo a deletion."""
        return self._record(slide_id, cell_ids, "restore", reader)

    def add_cell(
        self, slide_id: str, row: float, col: float, code: str, reader: str | None = None
    ) -> int:
        """Add a cell the detector missed, with its class; return the new cell id."""
        self._check_code(code)
        reader = reader or default_reader()
        now = utc_now()
        with self.transaction() as db:
            cell_id = self._next_cell_id(db, slide_id)
            db.execute(
                "INSERT INTO cells VALUES (?, ?, ?, ?, 'added', ?)",
                (slide_id, cell_id, float(row), float(col), now),
            )
            db.execute(
                "INSERT INTO events (slide_id, cell_id, reader, time, action, old_class,"
                " new_class, model_version) VALUES (?, ?, ?, ?, 'add', NULL, ?, NULL)",
                (slide_id, cell_id, reader, now, code),
            )
            self._claim_primary_reader(db, slide_id, reader)
        return cell_id

    def _check_code(self, code: str) -> None:
        if code not in self.scheme:
            raise ValueError(
                f"Class {code!r} is not in scheme {self.scheme.name!r}; "
                f"valid codes: {', '.join(self.scheme.codes)}."
            )

    def _record(
        self,
        slide_id: str,
        cell_ids: Iterable[int],
        action: str,
        reader: str | None,
        new_class: str | None = None,
    ) -> int:
        reader = reader or default_reader()
        cell_ids = [int(c) for c in cell_ids]
        table = self.cell_table(slide_id, reader=reader, include_deleted=True)
        table = table.set_index("cell_id")
        missing = sorted(set(cell_ids) - set(table.index))
        if missing:
            raise StoreError(f"Slide {slide_id} has no cells with ids {missing}.")
        now = utc_now()
        with self.transaction() as db:
            for cell_id in cell_ids:
                cell = table.loc[cell_id]
                old = cell["class"] or None
                new = new_class if action == "label" else (cell["class"] or cell["predicted_class"])
                db.execute(
                    "INSERT INTO events (slide_id, cell_id, reader, time, action, old_class,"
                    " new_class, model_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (slide_id, cell_id, reader, now, action, old, new or None,
                     cell["model_version"] or None),
                )
            self._claim_primary_reader(db, slide_id, reader)
        return len(cell_ids)

    @staticmethod
    def _claim_primary_reader(db: sqlite3.Connection, slide_id: str, reader: str) -> None:
        db.execute(
            "UPDATE slides SET primary_reader=? WHERE slide_id=? AND primary_reader IS NULL",
            (reader, slide_id),
        )

    # -- slide-level actions ----------------------------------------------------------------
    def record_slide_event(
        self, slide_id: str, action: str, reader: str | None = None, **detail: object
    ) -> int:
        """Append an action on a whole slide (sign-off, reopening, ...) to its log.

        ``detail`` is stored as JSON. Returns the new event's id.
        """
        if action not in SLIDE_ACTIONS:
            raise ValueError(
                f"Unknown slide action {action!r}; expected one of {', '.join(SLIDE_ACTIONS)}."
            )
        self.slide(slide_id)
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO slide_events (slide_id, reader, time, action, detail)"
                " VALUES (?, ?, ?, ?, ?)",
                (slide_id, reader or default_reader(), utc_now(), action,
                 json.dumps(detail, ensure_ascii=False, default=str)),
            )
        return int(cursor.lastrowid)

    def slide_events(self, slide_id: str, action: str | None = None) -> pd.DataFrame:
        """Return a slide's slide-level events, oldest first (``detail`` parsed from JSON)."""
        query = "SELECT * FROM slide_events WHERE slide_id=?"
        params: tuple = (slide_id,)
        if action is not None:
            query += " AND action=?"
            params += (action,)
        table = pd.read_sql_query(query + " ORDER BY event_id", self._connection, params=params)
        table["detail"] = table["detail"].map(json.loads)
        return table

    # -- reading ------------------------------------------------------------------------
    def events(self, slide_id: str, cell_id: int | None = None) -> pd.DataFrame:
        """Return the event log of a slide (or of one cell), oldest first."""
        query = "SELECT * FROM events WHERE slide_id=?"
        params: tuple = (slide_id,)
        if cell_id is not None:
            query += " AND cell_id=?"
            params += (int(cell_id),)
        return pd.read_sql_query(query + " ORDER BY event_id", self._connection, params=params)

    def cell_table(
        self, slide_id: str, reader: str | None = None, include_deleted: bool = False
    ) -> pd.DataFrame:
        """Return one row per cell with its prediction and current human label.

        Columns: ``slide_id, cell_id, row, col, row_um, col_um, class, predicted_class,
        confidence, probabilities, source, label_source, reader, updated_at,
        model_version, bald, deleted``. ``class`` is empty for a cell that no reader has
        labelled; ``bald`` is NaN unless the newest prediction stored a BALD score.
        With ``reader`` the labels are that reader's; otherwise the slide's primary reader's.
        """
        slide = self.slide(slide_id)
        reader = reader or slide["primary_reader"]
        cells = pd.read_sql_query(
            "SELECT * FROM cells WHERE slide_id=? ORDER BY cell_id", self._connection,
            params=(slide_id,),
        )
        predictions = pd.read_sql_query(
            "SELECT * FROM predictions WHERE slide_id=? ORDER BY created_at", self._connection,
            params=(slide_id,),
        )
        table = derive_cell_table(cells, predictions, self.events(slide_id), reader, slide["mpp"])
        if not include_deleted:
            table = table[~table["deleted"]].reset_index(drop=True)
        return table

    def count(self, slide_id: str, reader: str | None = None, **settings) -> Differential:
        """Count a slide's cells; ``settings`` go to :func:`count_differential`.

        With ``reader``, the count uses that reader's labels; otherwise the primary
        reader's (the first reader who labelled the slide).
        """
        table = self.cell_table(slide_id, reader=reader)
        unreviewed = int((table["class"] == "").sum())
        labels = effective_labels(table)
        differential = count_differential(
            labels[labels != ""], self.scheme, unreviewed=unreviewed, **settings
        )
        differential.slide_id = slide_id
        return differential
