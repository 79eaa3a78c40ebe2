"""Only SQLite opens the files SQLite locks (DESIGN invariant 14).

POSIX ``fcntl`` locks belong to a process and a file: a raw ``open()`` and
``close()`` of the database file anywhere in a process releases the locks its
SQLite connections hold. Another process's last connection then thinks it is
alone, checkpoints and deletes the WAL, and commits made through the first
process's still-open connection are lost. These tests script that sequence,
so they fail every time a raw open comes back, not now and then.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from sleepagent import SleepTimeAgent
from sleepagent.store.dburl import check_db
from sleepagent.testing import ScriptedChatModel

OTHER_PROCESS_WRITES_AND_CLOSES = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("INSERT INTO t VALUES ('other')")
conn.close()
"""

OTHER_PROCESS_READS_AND_CLOSES = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
conn.execute("PRAGMA schema_version").fetchone()
conn.close()
"""


def open_wal_holder(path: Path) -> sqlite3.Connection:
    """A connection in WAL mode that has written, as an agent's store connection has."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("CREATE TABLE t (x TEXT)")
    holder.execute("INSERT INTO t VALUES ('ours')")
    return holder


def run_other_process(code: str, path: Path) -> None:
    subprocess.run([sys.executable, "-c", textwrap.dedent(code), str(path)], check=True, timeout=60)


def other_process_writes_and_closes(path: Path) -> None:
    run_other_process(OTHER_PROCESS_WRITES_AND_CLOSES, path)


def test_the_wal_outlives_another_processs_close_while_this_process_holds_the_file(tmp_path):
    """The control: with no check in between, the other process is not the last one."""
    path = tmp_path / "held.db"
    holder = open_wal_holder(path)
    try:
        other_process_writes_and_closes(path)
        assert Path(f"{path}-wal").exists()
    finally:
        holder.close()


def test_checking_a_database_this_process_holds_open_keeps_its_locks(tmp_path):
    path = tmp_path / "held.db"
    holder = open_wal_holder(path)
    try:
        assert check_db(path) == path

        other_process_writes_and_closes(path)

        assert Path(f"{path}-wal").exists(), (
            "the other process's close took this process's database for closed: "
            "the check released our locks"
        )
        holder.execute("INSERT INTO t VALUES ('after')")
        rows = sorted(row[0] for row in holder.execute("SELECT x FROM t"))
        assert rows == ["after", "other", "ours"]
    finally:
        holder.close()


def test_opening_a_second_agent_on_a_file_the_process_holds_keeps_the_first_agents_locks(
    tmp_path,
):
    path = tmp_path / "agents.db"
    with SleepTimeAgent(ScriptedChatModel(["hi", "yes"]), db=path, scheduler=None) as first:
        first.chat("hello", thread_id="t1", user_id="ada")
        with SleepTimeAgent(ScriptedChatModel(), db=path, scheduler=None):
            pass
        # Its close is the file's last if opening the second agent dropped the first's locks.
        run_other_process(OTHER_PROCESS_READS_AND_CLOSES, path)
        assert Path(f"{path}-wal").exists()
        first.chat("still here", thread_id="t1", user_id="ada")
