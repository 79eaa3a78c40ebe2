"""How durable a SQLite write is, decided in one place: the store's pragma and the commit sync.

The rule, for the SQLite database an agent opens (:mod:`sleepagent.store.persistence`,
both connections in WAL mode):

- **A process kill loses no committed write, whatever the setting.** A transaction
  is in the WAL file once it commits; the operating system keeps it when the
  process dies. What ``synchronous`` decides is what survives a power loss or an
  operating-system crash: whether the WAL is synced to the disk before the
  commit returns.
- **The checkpointer's connection keeps SQLite's default, ``synchronous=FULL``.**
  Every checkpoint write syncs the WAL, and LangGraph returns from ``invoke``
  only after its checkpoint writes finish.
- **The store's connection runs with ``synchronous=NORMAL``** (:func:`relax_store_sync`):
  a turn writes its log entries, head and chat usage through the store, then
  its checkpoint through the checkpointer, on the same WAL. The checkpoint's
  sync makes the log write durable too (one WAL, synced in order), so the log
  write does not pay a sync of its own (one sync per turn instead of two).
- **A commit syncs the WAL itself** (:func:`wal_to_sync`, :func:`sync_wal`): blocks,
  history, the watermark, failure records and ``write_memory`` may have no
  checkpoint after them, so, when the store's connection does not sync every
  commit, :class:`~sleepagent.store.locking.SqliteBackend` syncs the WAL under
  the commit lock before the commit returns, as ``synchronous=FULL`` would. A
  store connection you open yourself keeps its own setting: one at ``FULL``
  gets no second sync.

Only the ``-wal`` file is opened here, and only because SQLite takes no locks on
it: a WAL database is locked through the database file and its ``-shm`` file,
and a raw open and close of either, anywhere in the process, releases every
POSIX lock SQLite holds on it and loses commits (invariant 14; see
:mod:`sleepagent.store.dburl`). Never open those two here.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

__all__ = ["STORE_SYNCHRONOUS", "relax_store_sync", "sync_wal", "wal_to_sync"]

STORE_SYNCHRONOUS = "NORMAL"
"""``PRAGMA synchronous`` of the store's own connection (see the module docstring)."""
_SYNCHRONOUS_FULL = 2
"""``PRAGMA synchronous`` as a number: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA."""


def relax_store_sync(conn: sqlite3.Connection) -> None:
    """Set the store connection's ``synchronous`` (commits then sync through :func:`sync_wal`)."""
    conn.execute(f"PRAGMA synchronous={STORE_SYNCHRONOUS}")


def wal_to_sync(database: str, synchronous: int) -> Path | None:
    """The WAL file a commit must sync itself, or ``None`` when the connection syncs it.

    Args:
        database: The database file (``""`` for a database in memory: nothing to sync).
        synchronous: The store connection's ``PRAGMA synchronous``, as a number.

    """
    if not database or synchronous >= _SYNCHRONOUS_FULL:
        return None
    return Path(f"{database}-wal")


def sync_wal(path: Path) -> None:
    """Sync a database's ``-wal`` file to the disk (missing: not in WAL mode, nothing to do).

    The commit looks this function up on this module each time, so a test can
    observe the syncs by replacing it (``monkeypatch.setattr(durability, "sync_wal", ...)``).
    """
    # Safe to open raw: SQLite takes no locks on the -wal file (see the module docstring).
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:  # not in WAL mode, or checkpointed and removed: nothing to sync
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
