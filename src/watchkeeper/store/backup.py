"""`watchkeeper db backup`: a consistent copy of a SQLite database while the service runs."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from watchkeeper.core.redact import redact_url

PG_DUMP_HINT = (
    "storage is PostgreSQL: back it up with pg_dump, e.g. "
    "pg_dump --format=custom --file=watchkeeper.dump 'postgresql://USER@HOST/DB'"
)


class BackupError(Exception):
    """The backup was not made; the message says why."""


@dataclass(frozen=True)
class Backup:
    target: Path
    size: int
    pages: int
    seconds: float


def sqlite_path(url: str) -> Path:
    """The database file of a `sqlite:///…` storage URL; BackupError for any other."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        raise BackupError(PG_DUMP_HINT)
    if backend != "sqlite":
        raise BackupError(f"cannot back up storage {redact_url(url)!r}")
    if not parsed.database or parsed.database == ":memory:":
        raise BackupError("storage is an in-memory SQLite database: nothing to back up")
    return Path(parsed.database)


def backup_sqlite(source: Path, target: Path, *, force: bool = False) -> Backup:
    """Copy `source` to `target` with SQLite's online backup API.

    The copy is one read transaction, so it is consistent while the service writes (in WAL
    mode writers are not blocked meanwhile). It is written next to `target` first and moved
    into place when complete, so `target` is never a partial file; an existing `target` is
    kept unless `force`."""
    if not source.is_file():
        raise BackupError(f"no database at {source}")
    if target.exists() and not force:
        raise BackupError(f"{target} exists; use --force to overwrite it")
    if not target.parent.is_dir():
        raise BackupError(f"no directory {target.parent} to write {target.name} in")
    started = time.perf_counter()
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(fd)
    partial = Path(name)
    try:
        pages = _copy(source, partial)
        with partial.open("rb+") as f:
            os.fsync(f.fileno())
        if force:
            partial.replace(target)
        else:
            try:  # a link, unlike a rename, never replaces a file made meanwhile
                os.link(partial, target)
            except FileExistsError:
                raise BackupError(f"{target} exists; use --force to overwrite it") from None
    finally:
        partial.unlink(missing_ok=True)
    return Backup(target, target.stat().st_size, pages, time.perf_counter() - started)


def _copy(source: Path, target: Path) -> int:
    # mode=rw: never create the source; it is only read, but a WAL database's reader needs
    # to write its shared-memory index.
    uri = source.resolve().as_uri() + "?mode=rw"
    try:
        with (
            contextlib.closing(sqlite3.connect(uri, uri=True, timeout=30)) as src,
            contextlib.closing(sqlite3.connect(target)) as dst,
        ):
            # All pages in one step: one read transaction, one consistent snapshot (a
            # stepwise copy restarts each time the service writes in between).
            src.backup(dst, pages=-1)
            # One self-contained file: the service turns WAL back on when it opens it.
            dst.execute("PRAGMA journal_mode=DELETE")
            check = dst.execute("PRAGMA quick_check").fetchone()[0]
            pages = int(dst.execute("PRAGMA page_count").fetchone()[0])
    except sqlite3.Error as exc:
        raise BackupError(f"backup of {source} failed: {exc}") from None
    if check != "ok":
        raise BackupError(f"the copy of {source} fails its integrity check: {check}")
    return pages
