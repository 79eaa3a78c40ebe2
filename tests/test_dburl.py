"""The db= argument: SQLite paths and URLs, PostgreSQL URLs, and errors that say what to do."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from sleepagent import SleepTimeAgent
from sleepagent.errors import ConfigurationError, SleepAgentError, StorageError
from sleepagent.store.dburl import PostgresTarget, SqliteTarget, check_db, parse_db, redact_url
from sleepagent.testing import ScriptedChatModel


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("db", "path"),
    [
        ("bot.db", "bot.db"),
        (Path("data/bot.db"), "data/bot.db"),
        ("sqlite:///bot.db", "bot.db"),
        ("sqlite:///data/bot.db", "data/bot.db"),
        ("sqlite:////srv/bot.db", "/srv/bot.db"),
        ("SQLITE:///my%20bot.db", "my bot.db"),
    ],
)
def test_sqlite_paths_and_urls_name_a_file(db, path):
    assert parse_db(db) == SqliteTarget(Path(path))


def test_postgres_urls_are_kept_as_given_and_shown_without_the_password():
    url = "postgresql://bot:s3cret@db:5432/memory"
    assert parse_db(url) == PostgresTarget(url)
    assert parse_db("postgres://db/memory") == PostgresTarget("postgres://db/memory")
    assert str(PostgresTarget(url)) == "postgresql://bot:***@db:5432/memory"
    assert redact_url("postgresql://db/memory") == "postgresql://db/memory"


def test_none_is_in_memory():
    assert parse_db(None) is None
    assert check_db(None) is None


@pytest.mark.parametrize(
    ("db", "says"),
    [
        ("mysql://u:pw@h/db", "cannot use mysql:// databases"),
        ("sqlite://", "three slashes"),
        ("sqlite:///", "names no file"),
        ("sqlite:///:memory:", "db=None"),
        ("  ", "db= is empty"),
    ],
)
def test_unusable_values_are_configuration_errors_that_list_the_forms(db, says):
    with pytest.raises(ConfigurationError, match=says):
        parse_db(db)


def test_a_mysql_url_error_hides_its_password():
    with pytest.raises(ConfigurationError) as raised:
        parse_db("mysql://u:pw@h/db")
    assert "pw" not in str(raised.value)


def test_a_sqlite_url_becomes_the_path_persistence_opens(tmp_path):
    assert check_db(f"sqlite:///{tmp_path}/bot.db") == str(tmp_path / "bot.db")
    given = tmp_path / "bot.db"
    assert check_db(given) is given, "a path stays the caller's object"


def test_a_file_in_a_missing_folder_names_the_folder_and_the_fix(tmp_path):
    db = tmp_path / "no" / "such" / "bot.db"
    with pytest.raises(StorageError) as raised:
        check_db(str(db))
    message = str(raised.value)
    assert str(db) in message
    assert f"mkdir -p {db.parent}" in message
    assert raised.value.target == str(db)
    assert isinstance(raised.value, OSError) and isinstance(raised.value, SleepAgentError)


def test_a_file_that_is_not_a_sqlite_database_is_refused_and_left_alone(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("my shopping list\n")
    with pytest.raises(StorageError, match="is not a SQLite database"):
        check_db(notes)
    assert notes.read_text() == "my shopping list\n"


def test_a_folder_is_refused_with_a_file_name_to_use(tmp_path):
    with pytest.raises(StorageError, match="is a folder"):
        check_db(tmp_path)


def test_an_empty_file_is_a_usable_database(tmp_path):
    empty = tmp_path / "new.db"
    empty.touch()
    assert check_db(empty) == empty


def test_an_agent_opens_a_sqlite_url_and_creates_that_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with SleepTimeAgent(ScriptedChatModel(["hi"]), db="sqlite:///bot.db", scheduler=None) as agent:
        agent.chat("hello", thread_id="t1")
    assert (tmp_path / "bot.db").is_file()
    assert not (tmp_path / "sqlite:").exists()


def test_an_agent_on_a_missing_folder_fails_before_creating_anything(tmp_path):
    db = tmp_path / "missing" / "bot.db"
    with pytest.raises(StorageError, match="does not exist"):
        SleepTimeAgent(ScriptedChatModel([]), db=str(db), scheduler=None)
    assert not db.parent.exists()


def test_an_unreachable_postgres_server_is_a_storage_error_naming_the_url(tmp_path):
    pytest.importorskip("psycopg")
    url = f"postgresql://bot:s3cret@127.0.0.1:{free_port()}/memory"
    with pytest.raises(StorageError) as raised:
        SleepTimeAgent(ScriptedChatModel([]), db=url, scheduler=None)
    message = str(raised.value)
    assert f"postgresql://bot:***@127.0.0.1:{url.rsplit(':', 1)[1].split('/')[0]}" in message
    assert "s3cret" not in message
    assert "server is running" in message


async def test_the_async_agent_checks_the_database_too(tmp_path):
    from sleepagent import AsyncSleepTimeAgent

    agent = AsyncSleepTimeAgent(
        ScriptedChatModel([]), db=str(tmp_path / "missing" / "x.db"), scheduler=None
    )
    with pytest.raises(StorageError, match="does not exist"):
        await agent.__aenter__()
