"""What the ``db=`` argument names, and whether that database can be opened.

Accepted forms:

- ``None``: conversations and memory in memory only.
- A SQLite file path (``str`` or ``os.PathLike``), created if missing.
- A ``sqlite:///`` URL: three slashes before a relative path (``sqlite:///bot.db``),
  four before an absolute one (``sqlite:////var/lib/bot.db``), as in SQLAlchemy.
- A ``postgresql://`` (or ``postgres://``) URL.

:func:`check_db` is called when persistence opens: it turns a ``sqlite:///`` URL
into a path and fails early, with a :class:`~sleepagent.errors.StorageError`
that names the path or URL and the fix, where opening would otherwise fail
later with a bare driver error.

Only SQLite opens a SQLite database file or its ``-shm`` file in this process.
POSIX ``fcntl`` locks belong to the process and the file, not to a descriptor:
closing *any* descriptor of the file (a Python ``open()`` to read its header,
say) releases every lock SQLite holds on it through connections already open in
the process. Another process's last connection then believes it is alone,
checkpoints and deletes the WAL and ``-shm`` under our feet, and committed
writes are lost ("How To Corrupt An SQLite Database File", section 2.2, in
SQLite's documentation). SQLite itself shares one descriptor per file among a
process's connections and defers closing it while locks are held, so a check
made through ``sqlite3`` is safe where a raw open is not.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from sleepagent.errors import ConfigurationError, StorageError

__all__ = [
    "DbTarget",
    "PostgresTarget",
    "SqliteTarget",
    "check_db",
    "parse_db",
    "redact_url",
]

_POSTGRES_SCHEMES = ("postgresql", "postgres")
_CONNECT_TIMEOUT_S = 10


@dataclass(frozen=True)
class SqliteTarget:
    """A SQLite database file.

    Attributes:
        path: The file (it may not exist yet).

    """

    path: Path

    def __str__(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class PostgresTarget:
    """A PostgreSQL database.

    Attributes:
        url: The connection URL, as given.

    """

    url: str

    def __str__(self) -> str:
        return redact_url(self.url)


DbTarget = SqliteTarget | PostgresTarget | None
"""What a ``db=`` argument names; ``None`` is in-memory persistence."""


def parse_db(db: str | PathLike[str] | None) -> DbTarget:
    """Read a ``db=`` argument without touching the file system or the network.

    Raises:
        ConfigurationError: For an empty value, or a URL of a database sleepagent
            cannot use (the message lists the forms it can).

    """
    if db is None:
        return None
    if not isinstance(db, str):
        return SqliteTarget(Path(db))
    if not db.strip():
        raise ConfigurationError(
            "db= is empty: pass a SQLite file path such as 'sleepagent.db', a postgresql:// "
            "URL, or db=None to keep everything in memory"
        )
    scheme, has_scheme, rest = db.partition("://")
    if not has_scheme or os.sep in scheme or (os.altsep and os.altsep in scheme):
        return SqliteTarget(Path(db))
    scheme = scheme.lower()
    if scheme in _POSTGRES_SCHEMES:
        return PostgresTarget(db)
    if scheme == "sqlite":
        return SqliteTarget(Path(_sqlite_url_path(db, rest)))
    raise ConfigurationError(
        f"db={redact_url(db)!r}: sleepagent cannot use {scheme}:// databases. Pass a SQLite "
        "file path ('bot.db' or 'sqlite:///bot.db') or a postgresql:// URL"
    )


def check_db(db: str | PathLike[str] | None) -> str | PathLike[str] | None:
    """Check that the database ``db`` names can be opened, and say how to fix it if not.

    Returns:
        What persistence opens: the SQLite path (a ``sqlite:///`` URL becomes a
        path), the PostgreSQL URL, or ``None``.

    Raises:
        ConfigurationError: See :func:`parse_db`.
        StorageError: For a SQLite file in a missing or read-only folder, a file
            that is not a SQLite database, or a PostgreSQL server that does not answer
            or refuses the connection.

    """
    target = parse_db(db)
    if target is None:
        return None
    if isinstance(target, PostgresTarget):
        _check_postgres(target)
        return target.url
    _check_sqlite(target.path)
    # A path given as a path stays the caller's object (PathLike or str).
    return db if not (isinstance(db, str) and "://" in db) else str(target.path)


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, for messages and logs."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    user, _, host = parts.netloc.rpartition("@")
    name = user.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{name}:***@{host}"))


def _sqlite_url_path(url: str, rest: str) -> str:
    # sqlite:///x.db -> "/x.db" after the scheme: one slash is the empty host.
    if not rest.startswith("/"):
        raise ConfigurationError(
            f"db={url!r}: a sqlite URL has three slashes before a relative path "
            "('sqlite:///bot.db') and four before an absolute one ('sqlite:////srv/bot.db')"
        )
    path = unquote(rest[1:].partition("?")[0])
    if not path or path == ":memory:":
        raise ConfigurationError(
            f"db={url!r} names no file: give one ('sqlite:///bot.db'), or pass db=None "
            "to keep everything in memory"
        )
    return path


def _check_sqlite(path: Path) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise StorageError(
            f"the SQLite database {path} is a folder: pass a file in it, "
            f"such as db='{path / 'sleepagent.db'}'",
            target=str(path),
        )
    if not path.exists():
        if not folder.is_dir():
            raise StorageError(
                f"cannot create the SQLite database {path}: the folder {folder} does not "
                f"exist. Create it first (mkdir -p {folder}) or pass another db= path",
                target=str(path),
            )
        if not os.access(folder, os.W_OK | os.X_OK):
            raise StorageError(
                f"cannot create the SQLite database {path}: the folder {folder} is not "
                "writable. Pass a db= path in a folder you can write to",
                target=str(path),
            )
        return
    # Read through SQLite, never with open(): see the module docstring. An empty
    # file is a valid, empty database; a file of other data fails as NOTADB.
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True)
        try:
            conn.execute("PRAGMA schema_version").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as error:
        if getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_NOTADB:
            raise StorageError(
                f"{path} is not a SQLite database (the file holds other data). Pass another "
                "db= path, or move that file away",
                target=str(path),
            ) from error
        raise StorageError(
            f"cannot open the SQLite database {path}: {error}. Check the file's "
            "permissions, or pass another db= path",
            target=str(path),
        ) from error


def _check_postgres(target: PostgresTarget) -> None:
    try:
        import psycopg
    except ImportError:
        return  # persistence says which extra to install
    kwargs = {} if "connect_timeout" in target.url else {"connect_timeout": _CONNECT_TIMEOUT_S}
    try:
        with psycopg.connect(target.url, **kwargs):  # type: ignore[arg-type]
            pass
    except psycopg.ProgrammingError as error:
        raise ConfigurationError(
            f"db={target}: not a valid PostgreSQL URL ({_first_line(error)}); "
            "the form is postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
        ) from error
    except psycopg.Error as error:
        raise StorageError(
            f"cannot connect to PostgreSQL at {target}: {_first_line(error)}. Check that the "
            "server is running and that the URL (postgresql://USER:PASSWORD@HOST:PORT/"
            "DATABASE) names an existing database (create it with: createdb DATABASE)",
            target=str(target),
        ) from error


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0].rstrip(".") if text else type(error).__name__
