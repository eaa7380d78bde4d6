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

from napari_alma.core.counting import CaseCount, Differential, count_case, count_differential
from napari_alma.core.i18n import tr
from napari_alma.core.scheme import ClassScheme, SchemeError, load_scheme
from napari_alma.store.files import write_atomic
from napari_alma.store.labels import (
    adjudicated_classes,
    derive_cell_table,
    match_existing,
    unadjudicated_disagreements,
)
from napari_alma.store.locking import retry_busy, store_error_text
from napari_alma.store.schema import MIGRATIONS, SCHEMA, SCHEMA_VERSION, SLIDE_ACTIONS

logger = logging.getLogger(__name__)

DATABASE_NAME = "alma.sqlite"
# A user-defined scheme is copied here, so the project keeps the scheme its labels follow.
SCHEME_COPY_NAME = "scheme.yaml"


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
    timeout : float
        Seconds a write waits for another window or command to finish its own before
        :class:`StoreError` is raised.
    """

    def __init__(
        self, folder: str | Path, scheme: ClassScheme | None = None, timeout: float = 30.0
    ):
        self.folder = Path(folder)
        self.database_path = self.folder / DATABASE_NAME
        self.timeout = float(timeout)
        self._connection = self._connect()
        self.scheme = scheme or load_scheme(self.get_meta("scheme") or "bone_marrow")
        if self.get_meta("scheme") is None:
            if self.scheme.source:
                # A scheme file is copied into the project, so the project reopens with it.
                self.use_scheme(self.scheme.source)
            else:
                self.set_meta("scheme", self.scheme.name)

    # -- connection ---------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                self.database_path, timeout=self.timeout, isolation_level=None
            )
        except (OSError, sqlite3.Error) as err:
            raise StoreError(tr("store_open_failed", database=self.database_path, error=err)) \
                from err
        try:
            return retry_busy(lambda: self._prepare(connection), self.timeout,
                              self.database_path)
        except StoreError:
            connection.close()
            raise
        except (OSError, sqlite3.Error) as err:
            connection.close()
            raise StoreError(tr("store_open_failed", database=self.database_path, error=err)) \
                from err

    def _prepare(self, connection: sqlite3.Connection) -> sqlite3.Connection:
        """Set the connection's durability settings and bring the schema up to date."""
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("PRAGMA foreign_keys=ON")
        version = self._stored_version(connection)
        if version is not None and version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.database_path} was written by a newer napari-alma (store schema "
                f"{version}, this version reads up to {SCHEMA_VERSION}). "
                "Upgrade napari-alma."
            )
        if version is not None and version < SCHEMA_VERSION:
            self._migrate(connection, version)
        connection.executescript(SCHEMA)
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
        """Run the block in one immediate transaction, committed (durably) on exit.

        The write lock is taken at the start, waiting up to ``timeout`` seconds for another
        writer, so what the block reads cannot change before it writes. Any SQLite failure
        (busy, disk full, read-only) rolls the whole block back and raises
        :class:`StoreError`.
        """
        try:
            retry_busy(lambda: self._connection.execute("BEGIN IMMEDIATE"), self.timeout,
                       self.database_path)
        except sqlite3.Error as err:
            raise self._write_error(err) from err
        try:
            yield self._connection
            self._connection.execute("COMMIT")
        except sqlite3.Error as err:
            self._rollback()
            raise self._write_error(err) from err
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        # SQLite rolls some failures (a full disk, for one) back by itself.
        if self._connection.in_transaction:
            self._connection.execute("ROLLBACK")

    def _write_error(self, err: sqlite3.Error) -> StoreError:
        return StoreError(store_error_text(err, self.database_path, self.timeout))

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
        slide_id = "S-" + hashlib.sha256(fingerprint.encode()).hexdigest()[:10]
        with self.transaction() as db:
            # Looked up under the write lock, so two windows opening a new slide at once
            # register it once.
            row = db.execute(
                "SELECT slide_id FROM slides WHERE fingerprint=?", (fingerprint,)
            ).fetchone()
            if row:
                db.execute("UPDATE slides SET path=? WHERE slide_id=?", (str(path), row[0]))
                return row[0]
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
        from napari_alma.store.signoff import check_writable

        with self.transaction() as db:
            check_writable(db, slide_id)
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
        from napari_alma.store.signoff import check_writable

        self._check_code(code)
        reader = reader or default_reader()
        now = utc_now()
        with self.transaction() as db:
            check_writable(db, slide_id)
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
        from napari_alma.store.cell_state import current_states
        from napari_alma.store.signoff import check_writable

        reader = reader or default_reader()
        cell_ids = [int(c) for c in cell_ids]
        # NOTE: the events of one call share one ``time``; undo treats them as one step.
        now = utc_now()
        with self.transaction() as db:
            check_writable(db, slide_id)
            # Read inside the write transaction, so another window's change made meanwhile
            # is the "old" class recorded here, never lost.
            states = current_states(db, slide_id, cell_ids, reader)
            missing = sorted(set(cell_ids) - set(states))
            if missing:
                raise StoreError(f"Slide {slide_id} has no cells with ids {missing}.")
            for cell_id in cell_ids:
                state = states[cell_id]
                new = new_class if action == "label" else state.shown
                db.execute(
                    "INSERT INTO events (slide_id, cell_id, reader, time, action, old_class,"
                    " new_class, model_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (slide_id, cell_id, reader, now, action, state.label or None, new or None,
                     state.model_version or None),
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
        return self._cell_table(slide_id, reader, self.events(slide_id), include_deleted)

    def _cell_table(self, slide_id: str, reader: str | None, events: pd.DataFrame,
                    include_deleted: bool = False) -> pd.DataFrame:
        """Build :meth:`cell_table` from a slide's event log the caller already read."""
        slide = self.slide(slide_id)
        reader = reader or slide["primary_reader"]
        # Only the columns the table needs leave SQLite: building a Python object per value
        # is most of the time on a slide of a million cells.
        cells = pd.read_sql_query(
            "SELECT cell_id, row, col, source FROM cells WHERE slide_id=? ORDER BY cell_id",
            self._connection, params=(slide_id,),
        )
        cells.insert(0, "slide_id", slide_id)
        table = derive_cell_table(
            cells, self._newest_predictions(slide_id), events, reader, slide["mpp"],
        )
        if not include_deleted:
            table = table[~table["deleted"]].reset_index(drop=True)
        return table

    def _newest_predictions(self, slide_id: str) -> pd.DataFrame:
        """Return each cell's newest prediction row, chosen in SQL.

        With ``max()`` in an aggregate query, SQLite takes the other (bare) columns from the
        row holding the maximum ("Bare columns in an aggregate query", sqlite.org/lang_select),
        so one pass over the primary-key index picks the rows and only those leave SQLite.
        """
        newest = pd.read_sql_query(
            "SELECT cell_id, model_version, class, confidence, probabilities, bald,"
            " MAX(created_at) AS created_at FROM predictions WHERE slide_id=? GROUP BY cell_id",
            self._connection, params=(slide_id,),
        )
        newest.insert(0, "slide_id", slide_id)
        return newest

    def count(
        self, slide_id: str, reader: str | None = None, labelled_only: bool = False,
        **settings,
    ) -> Differential:
        """Count a slide's cells; ``settings`` go to :func:`count_differential`.

        Without ``reader``, each cell counts as its adjudicated class where readers
        disagreed and an adjudicator settled it, else as the primary reader's label (the
        first reader who labelled the slide), else as the model's prediction. The result's
        ``unadjudicated`` is the number of disagreements no adjudicator has settled.
        With ``reader``, the count uses that reader's labels only. With ``labelled_only``
        (a blind second read), unlabelled cells are left out instead of counted as the
        prediction.
        """
        events = self.events(slide_id)
        table = self._cell_table(slide_id, reader, events)
        labels = table["class"]
        if reader is None:
            adjudicated = table["cell_id"].map(adjudicated_classes(events))
            labels = adjudicated.where(adjudicated.notna(), labels)
        unreviewed = int((labels == "").sum())
        if not labelled_only:
            labels = labels.where(labels != "", table["predicted_class"])
        differential = count_differential(
            labels[labels != ""], self.scheme, unreviewed=unreviewed, **settings
        )
        differential.slide_id = slide_id
        if reader is None:
            differential.unadjudicated = len(
                unadjudicated_disagreements(events, table["cell_id"])
            )
            if differential.unadjudicated:
                differential.warnings.append("unadjudicated")
        return differential

    # -- class scheme -------------------------------------------------------------------
    def use_scheme(self, source: str | Path) -> ClassScheme:
        """Make a bundled scheme (by name) or a YAML scheme file the project's scheme.

        A file is copied into the project folder, so later edits to the original change
        nothing here. Every class already stored (predictions and labels) must be in the
        new scheme.

        Raises
        ------
        SchemeError
            When the scheme is invalid or lacks classes the project's cells carry.
        """
        scheme = load_scheme(source)
        self._check_stored_classes(scheme)
        stored_as = scheme.source
        # A bundled scheme's source is its name; a file's is its absolute path.
        if Path(scheme.source).is_absolute():
            copy = write_atomic(self.folder / SCHEME_COPY_NAME,
                                Path(scheme.source).read_bytes())
            scheme = load_scheme(copy)
            # NOTE: the absolute path is stored because Project() loads the scheme from
            # this setting; a moved project folder needs `use_scheme` run again.
            stored_as = scheme.source
            self.set_meta("scheme_origin", str(source))
        self.set_meta("scheme", stored_as)
        self.scheme = scheme
        return scheme

    def _check_stored_classes(self, scheme: ClassScheme) -> None:
        rows = self._connection.execute(
            "SELECT class FROM predictions UNION SELECT new_class FROM events "
            "WHERE new_class IS NOT NULL"
        ).fetchall()
        missing = sorted({row[0] for row in rows} - set(scheme.codes))
        if missing:
            raise SchemeError(
                f"Scheme {scheme.name!r} lacks classes that cells of project {self.folder} "
                f"carry: {', '.join(missing)}. Add them to the scheme, or keep the project's "
                f"scheme {self.scheme.name!r}."
            )

    # -- cases --------------------------------------------------------------------------
    def set_case(self, slide_id: str, case_id: str | None, reader: str | None = None) -> None:
        """Assign a slide (smear) to a case, the patient sample it belongs to.

        ``case_id`` None (or blank) takes the slide out of its case. The case id is a
        pseudonym of the lab's choosing: never a patient name or record number. The slide
        log records who made the change, and when.
        """
        self.slide(slide_id)
        case_id = (case_id or "").strip() or None
        with self.transaction() as db:
            db.execute("UPDATE slides SET case_id=? WHERE slide_id=?", (case_id, slide_id))
            db.execute(
                "INSERT INTO slide_events (slide_id, reader, time, action, detail)"
                " VALUES (?, ?, ?, 'set_case', ?)",
                (slide_id, reader or default_reader(), utc_now(),
                 json.dumps({"case_id": case_id}, ensure_ascii=False)),
            )

    def cases(self) -> pd.DataFrame:
        """Return one row per case: ``case_id`` and ``slides`` (their ids, comma-separated)."""
        return pd.read_sql_query(
            "SELECT case_id, GROUP_CONCAT(slide_id, ',') AS slides FROM "
            "(SELECT case_id, slide_id FROM slides WHERE case_id IS NOT NULL ORDER BY added_at) "
            "GROUP BY case_id ORDER BY case_id",
            self._connection,
        )

    def case_slides(self, case_id: str) -> list[str]:
        """Return the ids of a case's slides, oldest first.

        Raises
        ------
        StoreError
            When no slide of the project belongs to ``case_id``.
        """
        rows = self._connection.execute(
            "SELECT slide_id FROM slides WHERE case_id=? ORDER BY added_at", (case_id,)
        ).fetchall()
        if not rows:
            raise StoreError(
                f"No slide of project {self.folder} belongs to case {case_id!r}. Assign slides "
                f"with `napari-alma case {self.folder} --slide SLIDE --set {case_id}`."
            )
        return [row[0] for row in rows]

    def count_case(self, case_id: str, reader: str | None = None, **settings) -> CaseCount:
        """Count every slide of a case and their sum; ``settings`` as for :meth:`count`.

        With ``reader``, every slide is counted with that reader's labels; otherwise each
        slide with its own primary reader's.
        """
        slides = [self.count(slide_id, reader=reader, **settings)
                  for slide_id in self.case_slides(case_id)]
        return count_case(case_id, slides, self.scheme, **settings)
