"""Waiting for another writer, and turning SQLite failures into messages a reader can act on.

Two napari windows, or a window and the command line, may write to one project at once.
SQLite lets one connection write at a time, and the others wait in its busy handler. The
handler is not always called: where waiting could deadlock, SQLite returns SQLITE_BUSY at
once (documentation of ``sqlite3_busy_handler``). Writes are therefore also retried here,
with a growing pause, until the project's timeout runs out. The user then gets a
:class:`~napari_alma.store.project.StoreError` naming the project, never SQLite's bare
"database is locked".
"""

from __future__ import annotations

import logging
import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from napari_alma.core.i18n import tr

logger = logging.getLogger(__name__)

T = TypeVar("T")

FIRST_PAUSE_S = 0.005
MAX_PAUSE_S = 0.5


def is_busy(err: sqlite3.Error) -> bool:
    """Return True when ``err`` means another connection holds the lock."""
    text = str(err).lower()
    return isinstance(err, sqlite3.OperationalError) and (
        "locked" in text or "busy" in text
    )


def retry_busy(operation: Callable[[], T], timeout: float, database: Path) -> T:
    """Run ``operation``, retrying while the database is busy, for at most ``timeout`` s.

    Raises
    ------
    sqlite3.OperationalError
        The last busy error, once ``timeout`` seconds have passed; any other error at once.
    """
    deadline = time.monotonic() + timeout
    pause = FIRST_PAUSE_S
    attempt = 0
    while True:
        try:
            return operation()
        except sqlite3.OperationalError as err:
            attempt += 1
            if not is_busy(err) or time.monotonic() + pause > deadline:
                raise
            logger.info("%s is busy (%s); retry %d in %.3f s", database, err, attempt, pause)
            # Jitter keeps two waiting processes from retrying in lockstep.
            time.sleep(pause * random.uniform(0.5, 1.0))
            pause = min(pause * 2, MAX_PAUSE_S)


def store_error_text(err: sqlite3.Error, database: Path, timeout: float) -> str:
    """Return the message for a failed write: the cause in plain words and what to do."""
    text = str(err).lower()
    if is_busy(err):
        key = "store_busy"
    elif "full" in text:
        key = "store_disk_full"
    elif "readonly" in text or "read-only" in text or "permission" in text:
        key = "store_read_only"
    else:
        key = "store_write_failed"
    return tr(key, database=database, timeout=f"{timeout:g}", error=err)
