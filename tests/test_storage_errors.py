"""A database driver's error reaches the caller as a StorageError, on every database and mode."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from sleepagent.errors import StorageError

PASSWORD = "hunter2-not-shown"


@pytest.fixture
def db(db: Path | str | None) -> Path | str:
    """The parametrised database, with a password in a PostgreSQL URL (the server ignores it)."""
    if db is None:
        pytest.skip("in-memory persistence has no database driver to fail")
    if isinstance(db, Path):
        return db
    parts = urlsplit(db)
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or "postgres"
    return urlunsplit(parts._replace(netloc=f"{user}:{PASSWORD}@{host}"))


@pytest.fixture
def store_table_gone(db: Path | str) -> Iterator[None]:
    """Rename the store's table away under the agent (and back afterwards)."""

    def rename(old: str, new: str) -> None:
        if isinstance(db, Path):
            with sqlite3.connect(db) as conn:
                conn.execute(f"ALTER TABLE {old} RENAME TO {new}")
            conn.close()
            return
        import psycopg

        with psycopg.connect(db, autocommit=True) as pg:
            pg.execute(f"ALTER TABLE {old} RENAME TO {new}")

    yield lambda: rename("store", "store_away")
    with contextlib.suppress(Exception):  # not renamed if the test failed before
        rename("store_away", "store")


def driver_error_class(db: Path | str) -> type[BaseException]:
    if isinstance(db, Path):
        return sqlite3.Error
    import psycopg

    return psycopg.Error


def causes(error: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    while error.__cause__ is not None:
        error = error.__cause__
        found.append(error)
    return found


def check(error: StorageError, db: Path | str) -> None:
    assert any(isinstance(cause, driver_error_class(db)) for cause in causes(error))
    assert PASSWORD not in str(error) and PASSWORD not in error.target
    if isinstance(db, Path):
        assert error.target == str(db)
    else:
        assert error.target.startswith("postgresql://postgres:***@")
    assert error.target in str(error)


def test_a_turn_on_a_broken_store_raises_a_storage_error_naming_the_database(
    make_agent, db, store_table_gone
):
    agent, _, _ = make_agent(chat=["first", "second"])
    agent.chat("hello", thread_id="t1")
    store_table_gone()
    with pytest.raises(StorageError) as raised:
        agent.chat("again", thread_id="t1")
    check(raised.value, db)


def test_a_streamed_turn_on_a_broken_store_raises_a_storage_error(make_agent, db, store_table_gone):
    agent, _, _ = make_agent(chat=["never sent"])
    store_table_gone()

    async def consume(stream) -> list[str]:
        return [piece async for piece in stream]

    with pytest.raises(StorageError) as raised:
        stream = agent.agent.chat_stream("hello", thread_id="t1")
        if agent.loop is None:
            list(stream)
        else:
            agent.loop.run_until_complete(consume(stream))
    check(raised.value, db)


def test_a_sleep_run_on_a_broken_store_raises_a_storage_error(make_agent, db, store_table_gone):
    agent, _, _ = make_agent(chat=["hi"])
    agent.chat("I like tea", thread_id="t1")
    store_table_gone()
    with pytest.raises(StorageError) as raised:
        agent.sleep(thread_id="t1")
    check(raised.value, db)


def test_reading_memory_from_a_broken_store_raises_a_storage_error(
    make_agent, db, store_table_gone
):
    agent, _, _ = make_agent()
    store_table_gone()
    with pytest.raises(StorageError) as raised:
        agent.memory(thread_id="t1")
    check(raised.value, db)
