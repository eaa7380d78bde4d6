"""Opening a store written by the first release migrates it without losing an event."""

import sqlite3
from pathlib import Path

import pytest

from napari_alma.store.project import DATABASE_NAME, Project, StoreError
from napari_alma.store.schema import SCHEMA_VERSION

SCHEMA_V1 = Path(__file__).parent / "data" / "schema_v1.sql"


@pytest.fixture
def version_1_store(tmp_path):
    """A project folder whose database has the first release's schema and some history."""
    folder = tmp_path / "old project"
    folder.mkdir()
    db = sqlite3.connect(folder / DATABASE_NAME)
    db.executescript(SCHEMA_V1.read_text())
    db.executescript("""
        INSERT INTO meta VALUES ('schema_version', '1'), ('scheme', 'bone_marrow');
        INSERT INTO slides VALUES ('S-1', 'a.tif', 'fp1', 0.25, 'file', 100, 100, NULL,
                                   'ana', '2026-01-01T00:00:00+00:00');
        INSERT INTO cells VALUES ('S-1', 1, 10, 10, 'model', '2026-01-01T00:00:00+00:00');
        INSERT INTO cells VALUES ('S-1', 2, 50, 50, 'added', '2026-01-01T00:00:00+00:00');
        INSERT INTO predictions VALUES ('S-1', 1, 'm1', 'BLA', 0.9, '{"BLA": 0.9, "LYT": 0.1}',
                                        '2026-01-01T00:00:00+00:00');
        INSERT INTO events (slide_id, cell_id, reader, time, action, old_class, new_class,
                            model_version)
        VALUES ('S-1', 1, 'ana', '2026-01-01T00:01:00+00:00', 'label', NULL, 'LYT', 'm1'),
               ('S-1', 2, 'ana', '2026-01-01T00:02:00+00:00', 'add', NULL, 'EBO', NULL);
    """)
    db.commit()
    db.close()
    return folder


def test_migration_keeps_every_event(version_1_store):
    with Project(version_1_store) as project:
        events = project.events("S-1")
        table = project.cell_table("S-1").set_index("cell_id")
    assert events["action"].tolist() == ["label", "add"]
    assert events["event_id"].tolist() == [1, 2]
    assert table.loc[1, "class"] == "LYT"
    assert table.loc[2, "class"] == "EBO"
    assert table.loc[1, "predicted_class"] == "BLA"


def test_migration_sets_version_and_keeps_backup(version_1_store):
    Project(version_1_store).close()
    db = sqlite3.connect(version_1_store / DATABASE_NAME)
    version = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    db.close()
    backup = sqlite3.connect(version_1_store / f"{DATABASE_NAME}.schema-1.bak")
    backed_up = backup.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    backup.close()
    assert int(version) == SCHEMA_VERSION
    assert backed_up == 2


def test_migrated_log_stays_append_only(version_1_store):
    with Project(version_1_store) as project:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            project._connection.execute("DELETE FROM events")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            project._connection.execute("UPDATE events SET reader='eve'")


def test_migrated_store_accepts_new_actions(version_1_store):
    with Project(version_1_store) as project:
        project.add_predictions("S-1", [[10, 10]], [[0.2, 0.8]], ["BLA", "LYT"], "m2",
                                radius=5, bald=[0.3])
        event_id = project.record_slide_event("S-1", "finalise", "ana", target=500)
        finalised = project.slide_events("S-1", "finalise")
        bald = project._connection.execute(
            "SELECT bald FROM predictions WHERE model_version='m2'").fetchone()[0]
    assert finalised["event_id"].tolist() == [event_id]
    assert finalised["detail"].iloc[0] == {"target": 500}
    assert bald == pytest.approx(0.3)


def test_newer_store_rejected(version_1_store):
    db = sqlite3.connect(version_1_store / DATABASE_NAME)
    db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer napari-alma"):
        Project(version_1_store)


def test_slide_log_is_append_only(tmp_path):
    with Project(tmp_path / "p") as project:
        slide_id = project.register_slide(tmp_path / "a.tif", "fp", (10, 10), mpp=0.25)
        project.set_mpp(slide_id, 0.3, reader="ana")
        logged = project.slide_events(slide_id)
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            project._connection.execute("DELETE FROM slide_events")
    assert logged["action"].tolist() == ["set_mpp"]
    assert logged["detail"].iloc[0] == {"mpp": 0.3, "source": "user"}


def test_unknown_slide_action_rejected(tmp_path):
    with Project(tmp_path / "p") as project:
        slide_id = project.register_slide(tmp_path / "a.tif", "fp", (10, 10), mpp=0.25)
        with pytest.raises(ValueError, match="Unknown slide action 'sign'"):
            project.record_slide_event(slide_id, "sign")
