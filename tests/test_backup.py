"""`watchkeeper db backup`: a consistent SQLite copy while something writes."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

from tests.test_config import watchkeeper
from watchkeeper.store.database import Database


def make_database(path: Path, rows: int) -> None:
    """The real schema (WAL mode, as the service leaves it) plus a table a writer fills:
    each transaction adds one row to `t` and counts it in `counter`."""

    async def migrate() -> None:
        db = Database(f"sqlite:///{path}")
        try:
            await db.migrate()
        finally:
            await db.close()

    asyncio.run(migrate())
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, payload BLOB NOT NULL)")
        conn.execute("CREATE TABLE counter (n INTEGER NOT NULL)")
        conn.execute("INSERT INTO counter VALUES (?)", (rows,))
        conn.executemany("INSERT INTO t (payload) VALUES (randomblob(1000))", [()] * rows)
    conn.close()


class Writer(threading.Thread):
    """Commits one row after another until stopped, as a busy service would."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.commits = 0
        self.errors: list[BaseException] = []
        self.stopping = threading.Event()
        self.writing = threading.Event()

    def run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            while not self.stopping.is_set():
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT INTO t (payload) VALUES (randomblob(1000))")
                conn.execute("UPDATE counter SET n = n + 1")
                conn.execute("COMMIT")
                self.commits += 1
                if self.commits == 20:
                    self.writing.set()
        except BaseException as exc:
            self.errors.append(exc)
            self.writing.set()
        finally:
            conn.close()


def test_backup_while_a_writer_commits_is_a_consistent_copy(tmp_path: Path) -> None:
    db, copy = tmp_path / "wk.db", tmp_path / "backup" / "copy.db"
    copy.parent.mkdir()
    make_database(db, rows=20_000)  # about 20 MB
    config = tmp_path / "wk.yaml"
    config.write_text(f"storage: {{url: 'sqlite:///{db}'}}\n", encoding="utf-8")

    writer = Writer(db)
    writer.start()
    try:
        assert writer.writing.wait(30), "the writer did not start"
        before = writer.commits
        result = watchkeeper("db", "backup", str(copy), "--config", str(config))
        after = writer.commits
    finally:
        writer.stopping.set()
        writer.join(30)
    assert result.returncode == 0, result.stderr
    assert "integrity ok" in result.stdout
    assert not writer.errors, "the backup blocked or broke the writer"
    assert after > before, "the writer made no progress while the backup ran"

    with sqlite3.connect(f"{copy.as_uri()}?mode=ro", uri=True) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        counted = conn.execute("SELECT n FROM counter").fetchone()[0]
        # Every committed transaction whole, none torn: rows and their count agree.
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == counted
        assert 20_000 + before <= counted <= 20_000 + after
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        assert revision == Database.head_revision()
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()
    assert sorted(p.name for p in copy.parent.iterdir()) == ["copy.db"]  # no partial file


def test_backup_keeps_an_existing_file_unless_forced(tmp_path: Path) -> None:
    db, copy = tmp_path / "wk.db", tmp_path / "copy.db"
    make_database(db, rows=10)
    config = tmp_path / "wk.yaml"
    config.write_text(f"storage: {{url: 'sqlite:///{db}'}}\n", encoding="utf-8")
    copy.write_bytes(b"an older backup")

    refused = watchkeeper("db", "backup", str(copy), "--config", str(config))
    assert refused.returncode == 1
    assert f"{copy} exists; use --force" in refused.stderr
    assert copy.read_bytes() == b"an older backup"

    forced = watchkeeper("db", "backup", str(copy), "--force", "--config", str(config))
    assert forced.returncode == 0, forced.stderr
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 10
    conn.close()


def test_backup_of_a_missing_database_does_not_create_one(tmp_path: Path) -> None:
    config = tmp_path / "wk.yaml"
    config.write_text(f"storage: {{url: 'sqlite:///{tmp_path / 'none.db'}'}}\n", encoding="utf-8")
    result = watchkeeper("db", "backup", str(tmp_path / "copy.db"), "--config", str(config))
    assert result.returncode == 1
    assert f"no database at {tmp_path / 'none.db'}" in result.stderr
    assert not (tmp_path / "none.db").exists() and not (tmp_path / "copy.db").exists()


def test_backup_of_postgresql_points_to_pg_dump_without_the_password(tmp_path: Path) -> None:
    config = tmp_path / "wk.yaml"
    config.write_text(
        "storage: {url: 'postgresql://wk:hunter2-secret@127.0.0.1:5432/test'}\n", encoding="utf-8"
    )
    result = watchkeeper("db", "backup", str(tmp_path / "copy.db"), "--config", str(config))
    assert result.returncode == 1
    assert "storage is PostgreSQL: back it up with pg_dump" in result.stderr
    assert "hunter2-secret" not in result.stderr + result.stdout
    assert not (tmp_path / "copy.db").exists()
