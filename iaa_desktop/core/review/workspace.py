"""A dataset's workspace: a SQLite database beside (never inside) the dataset.

The database (``workspace.sqlite`` in the folder
:func:`~iaa_desktop.core.workspace_paths.workspace_dir_for` names) holds the
reviewers' decisions. It runs in WAL mode with ``synchronous=FULL``: every
committed transaction is on disk when ``commit`` returns, so killing the
application (even with SIGKILL) loses nothing that was reported saved.

One writer at a time: the first application to open a workspace takes an
exclusive lock (``workspace.lock``: an OS file lock plus the holder's pid, host
and time, so a second instance can say who holds it). A second instance opens
the workspace read-only and says why (:attr:`Workspace.read_only_reason`). The
OS releases the lock when its holder dies, so a crash never leaves the
workspace locked; on systems without ``fcntl`` a lock whose process is gone
(same host) is taken over.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from iaa_desktop.core.errors import IAAError
from iaa_desktop.core.workspace_paths import DATABASE_NAME, workspace_dir_for

try:  # POSIX: the lock dies with its process
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
LOCK_NAME = "workspace.lock"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reviews (
    image_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    reference TEXT NOT NULL DEFAULT '',
    reviewer TEXT NOT NULL DEFAULT '',
    updated TEXT NOT NULL,
    edit_id INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS review_history (
    edit_id INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id TEXT NOT NULL,
    status TEXT NOT NULL,
    note TEXT NOT NULL,
    reference TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    updated TEXT NOT NULL
);
"""


class WorkspaceError(IAAError):
    """A workspace cannot be opened or written (message names the file and why)."""


@dataclass(frozen=True)
class LockHolder:
    """Who holds a workspace's write lock, as written in its lock file."""

    pid: int
    host: str
    since: str

    def describe(self) -> str:
        return f"process {self.pid} on {self.host} (since {self.since})"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    except OSError:
        return False
    return True


def read_lock_holder(folder: str | Path) -> LockHolder | None:
    """The holder recorded in ``folder``'s lock file, or ``None`` (no file, unreadable)."""
    try:
        values = json.loads((Path(folder) / LOCK_NAME).read_text(encoding="utf-8"))
        return LockHolder(int(values["pid"]), str(values["host"]), str(values["since"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


class _WriteLock:
    """The exclusive lock of one workspace folder (released by ``release`` or process death)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> LockHolder | None:
        """Take the lock; ``None`` on success, else who holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        locked = False
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = True
            except BlockingIOError:
                os.close(fd)
                return read_lock_holder(self.path.parent) or LockHolder(0, "?", "?")
            except OSError as exc:  # e.g. a network file system without locks
                log.warning("%s: no OS file lock (%s); relying on the pid in the lock file", self.path, exc)
        if not locked:
            # Without an OS lock: trust the pid written in the file, taking over a dead one's.
            holder = read_lock_holder(self.path.parent)
            if holder and holder.pid != os.getpid() and (
                    holder.host != socket.gethostname() or _pid_alive(holder.pid)):
                os.close(fd)
                return holder
        me = {"pid": os.getpid(), "host": socket.gethostname(),
              "since": datetime.now(UTC).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        self._fd = fd
        return None

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing the descriptor drops the flock
        self._fd = None


class Workspace:
    """An open workspace database.

    Use :meth:`open` (or :meth:`for_dataset`); close with :meth:`close` or a
    ``with`` block. Writes go through :meth:`transaction`; in read-only mode
    it raises ``WorkspaceError`` with :attr:`read_only_reason`.
    """

    def __init__(self, folder: Path, connection: sqlite3.Connection, lock: _WriteLock | None,
                 read_only_reason: str = "") -> None:
        self.folder = folder
        self.path = folder / DATABASE_NAME
        self._connection = connection
        self._lock = lock
        self.read_only_reason = read_only_reason

    # --- opening --------------------------------------------------------------------------------

    @classmethod
    def open(cls, folder: str | Path, *, dataset_root: str | Path | None = None,
             read_only: bool = False) -> Workspace:
        """Open (creating if needed) the workspace in ``folder``.

        When another process holds the write lock, or ``read_only`` is asked,
        the workspace opens read-only and :attr:`read_only_reason` says why.

        Raises
        ------
        WorkspaceError
            The folder cannot be created, the database is not a workspace, or
            it was written by a newer version.
        """
        folder = Path(folder)
        if dataset_root is not None and _inside(folder, Path(dataset_root)):
            raise WorkspaceError(f"{folder}: refusing to keep the workspace inside the dataset "
                                 f"{dataset_root}")
        reason = "opened read-only on request" if read_only else ""
        lock = None
        if not read_only:
            try:
                folder.mkdir(parents=True, exist_ok=True)
                lock = _WriteLock(folder)
                holder = lock.acquire()
            except OSError as exc:
                raise WorkspaceError(f"{folder}: cannot open the workspace folder "
                                     f"({exc.strerror or exc})") from None
            if holder is not None:
                lock = None
                reason = (f"{folder}: the workspace is open for writing in another IAA Desktop "
                          f"({holder.describe()}); opened read-only: close the other one to edit reviews")
        try:
            connection = cls._connect(folder, lock is None)
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        workspace = cls(folder, connection, lock, reason)
        if lock is not None:
            try:
                workspace._create_schema(dataset_root)
            except BaseException:
                workspace.close()
                raise
        return workspace

    @classmethod
    def for_dataset(cls, dataset_root: str | Path, *, read_only: bool = False) -> Workspace:
        """The workspace of the dataset at ``dataset_root`` (in the user data directory)."""
        return cls.open(workspace_dir_for(dataset_root), dataset_root=dataset_root, read_only=read_only)

    @staticmethod
    def _connect(folder: Path, read_only: bool) -> sqlite3.Connection:
        path = folder / DATABASE_NAME
        if read_only and not path.is_file():
            raise WorkspaceError(f"{path}: no workspace database to open read-only")
        try:
            if read_only:
                connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                             isolation_level=None, check_same_thread=False, timeout=10)
            else:
                connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                             timeout=10)
                connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            version = connection.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise WorkspaceError(f"{path}: not a readable workspace database ({exc})") from None
        if version > SCHEMA_VERSION:
            connection.close()
            raise WorkspaceError(f"{path}: workspace written by a newer IAA Desktop (schema {version}, "
                                 f"this version knows {SCHEMA_VERSION}); update to open it")
        return connection

    def _create_schema(self, dataset_root: str | Path | None) -> None:
        with self.transaction() as db:
            for statement in filter(str.strip, _SCHEMA.split(";")):
                db.execute(statement)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            if dataset_root is not None:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('dataset_root', ?)",
                           (str(Path(dataset_root).resolve()),))

    # --- state ----------------------------------------------------------------------------------

    @property
    def read_only(self) -> bool:
        return self._lock is None

    @property
    def connection(self) -> sqlite3.Connection:
        """The connection, for reads (writes: :meth:`transaction`)."""
        if self._connection is None:
            raise WorkspaceError(f"{self.path}: the workspace is closed")
        return self._connection

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error); durable once it exits."""
        if self.read_only:
            raise WorkspaceError(self.read_only_reason or f"{self.path}: the workspace is read-only")
        db = self.connection
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise WorkspaceError(f"{self.path}: cannot write to the workspace ({exc})") from None
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        try:
            db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            with contextlib.suppress(sqlite3.DatabaseError):
                db.execute("ROLLBACK")
            raise WorkspaceError(f"{self.path}: could not save to the workspace ({exc})") from None

    def meta(self, key: str) -> str | None:
        row = self.connection.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check``: ``"ok"`` for a sound database."""
        return "; ".join(row[0] for row in self.connection.execute("PRAGMA integrity_check"))

    def close(self) -> None:
        """Close the database and release the write lock (idempotent)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True
