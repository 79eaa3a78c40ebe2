"""The recall index: full-text search over a scope's earlier messages, in each database's own way.

``BaseStore`` has no full-text search, so recall keeps tables of its own beside
the store's, in the same database and through the store's own connection (and
lock): nothing opens the database file a second time (DESIGN invariant 14).
What each backend keeps (the layout is listed in :mod:`sleepagent.store.layout`):

==================  ===============================================================
store               index
==================  ===============================================================
``SqliteStore``     table ``sleepagent_recall`` (one row per message, unique per
(and the async      scope, thread and log position) and the FTS5 table
agent's threaded    ``sleepagent_recall_fts`` over its text (external content, kept
store)              by two triggers; porter stemming, diacritics folded); ranked by
                    ``bm25``
``PostgresStore``   table ``sleepagent_recall`` with a generated ``tsvector`` column
                    (``english`` configuration) and a GIN index; ranked by ``ts_rank``
``InMemoryStore``   a dictionary per store object, in this process; ranked by shared
                    terms weighted by their rarity (``recall.overlap_ranked``)
==================  ===============================================================

Every search filters on the scope's key by equality, so a scope never sees
another's messages. Every write is idempotent (``INSERT OR IGNORE`` / ``ON
CONFLICT DO NOTHING`` on the row's key). The tables are made by :meth:`setup`
(idempotent, serialised across processes on PostgreSQL), called when an agent
with recall on opens, and before a first write or search otherwise; erasing and
reading (``forget``, ``export``) look for the tables first and do nothing when
recall was never on, so they create nothing.

SQL is built in the pure methods of :class:`_SqlIndex` as a list of statements;
the sync and async shells only run them.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import weakref
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from langgraph.store.base import BaseStore

from sleepagent.errors import ConfigurationError
from sleepagent.memory.recall import RecallRow, fts5_query, overlap_ranked, words_of
from sleepagent.store import layout
from sleepagent.store.keyedlocks import run_to_completion
from sleepagent.store.locking import _StoreParts

__all__ = ["RecallIndex", "recall_index_for"]

_COLUMNS = (
    "scope",
    "thread_id",
    "seq",
    "role",
    "body",
    "speaker",
    "said_at",
    "logged_at",
    "message_id",
)


def _row(values: Any) -> RecallRow:
    if isinstance(values, dict):  # psycopg's dict_row, as LangGraph's stores set it
        values = [values[name] for name in _COLUMNS]
    scope, thread_id, seq, role, body, speaker, said_at, logged_at, message_id = values
    return RecallRow(
        scope=scope,
        thread_id=thread_id,
        seq=int(seq),
        role=role,
        text=body,
        speaker=speaker,
        said_at=said_at,
        at=logged_at,
        message_id=message_id,
    )


def _values(row: RecallRow) -> tuple[Any, ...]:
    return (
        row.scope,
        row.thread_id,
        row.seq,
        row.role,
        row.text,
        row.speaker,
        row.said_at,
        row.at,
        row.message_id,
    )


class RecallIndex:
    """A store's recall index: sync methods and their async twins (``a`` + name).

    Args:
        store: The store whose database holds the index.

    """

    def __init__(self, store: BaseStore) -> None:
        # Weak, like the commit backends: indexes are cached per store in a
        # WeakKeyDictionary, whose values must not keep their keys alive.
        self._store = weakref.ref(store)
        self._ready = False

    @property
    def store(self) -> BaseStore:
        """The store this index serves."""
        store = self._store()
        if store is None:
            raise RuntimeError("this recall index's store no longer exists")
        return store

    def setup(self) -> None:
        """Create the index's tables if they do not exist (idempotent)."""

    async def asetup(self) -> None:
        """Async :meth:`setup`."""

    def add(self, rows: Sequence[RecallRow]) -> None:
        """Index ``rows``; a row already indexed (same scope, thread, position) is kept as it is."""
        raise NotImplementedError

    async def aadd(self, rows: Sequence[RecallRow]) -> None:
        """Async :meth:`add`."""
        raise NotImplementedError

    def search(self, scope: str, terms: Sequence[str], *, limit: int) -> list[RecallRow]:
        """The ``limit`` messages of scope ``scope`` (its key) best matching any of ``terms``.

        ``terms`` must come from :func:`~sleepagent.memory.recall.query_terms`
        (plain letters and digits); the best match comes first.
        """
        raise NotImplementedError

    async def asearch(self, scope: str, terms: Sequence[str], *, limit: int) -> list[RecallRow]:
        """Async :meth:`search`."""
        raise NotImplementedError

    def rows(self, scope: str, threads: Sequence[str] | None = None) -> list[RecallRow]:
        """Every row of ``scope`` (or of its ``threads``), by thread and position."""
        raise NotImplementedError

    async def arows(self, scope: str, threads: Sequence[str] | None = None) -> list[RecallRow]:
        """Async :meth:`rows`."""
        raise NotImplementedError

    def erase(self, scope: str, threads: Sequence[str] | None = None) -> int:
        """Delete every row of ``scope`` (or of its ``threads``); returns how many."""
        raise NotImplementedError

    async def aerase(self, scope: str, threads: Sequence[str] | None = None) -> int:
        """Async :meth:`erase`."""
        raise NotImplementedError


# --- in memory ----------------------------------------------------------------------


class _MemoryIndex(RecallIndex):
    """``InMemoryStore``: rows in a dictionary per scope, in this process, like the store."""

    def __init__(self, store: BaseStore) -> None:
        super().__init__(store)
        self._lock = threading.Lock()
        self._scopes: dict[str, dict[tuple[str, int], tuple[RecallRow, frozenset[str]]]] = {}

    def add(self, rows: Sequence[RecallRow]) -> None:
        with self._lock:
            for row in rows:
                self._scopes.setdefault(row.scope, {}).setdefault(
                    (row.thread_id, row.seq), (row, frozenset(words_of(row.text)))
                )

    async def aadd(self, rows: Sequence[RecallRow]) -> None:
        self.add(rows)

    def search(self, scope: str, terms: Sequence[str], *, limit: int) -> list[RecallRow]:
        with self._lock:
            indexed = list(self._scopes.get(scope, {}).values())
        return overlap_ranked(indexed, terms, limit)

    async def asearch(self, scope: str, terms: Sequence[str], *, limit: int) -> list[RecallRow]:
        return self.search(scope, terms, limit=limit)

    def rows(self, scope: str, threads: Sequence[str] | None = None) -> list[RecallRow]:
        with self._lock:
            found = [row for row, _ in self._scopes.get(scope, {}).values()]
        wanted = None if threads is None else set(threads)
        return sorted(
            (row for row in found if wanted is None or row.thread_id in wanted),
            key=lambda row: (row.thread_id, row.seq),
        )

    async def arows(self, scope: str, threads: Sequence[str] | None = None) -> list[RecallRow]:
        return self.rows(scope, threads)

    def erase(self, scope: str, threads: Sequence[str] | None = None) -> int:
        with self._lock:
            held = self._scopes.get(scope, {})
            gone = [key for key in held if threads is None or key[0] in threads]
            for key in gone:
                del held[key]
            if not held:
                self._scopes.pop(scope, None)
        return len(gone)

    async def aerase(self, scope: str, threads: Sequence[str] | None = None) -> int:
        return self.erase(scope, threads)


# --- SQL -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sql:
    """One statement: run once, or once per argument tuple (``many``); rows kept if ``fetch``."""

    text: str
    args: Any = ()
    many: bool = False
    fetch: bool = False


@dataclass
class _Script:
    """Statements run in one transaction; the rows of each fetching one, in order."""

    statements: list[_Sql] = field(default_factory=list)
    write: bool = True


class _SqlIndex(RecallIndex):
    """Builds each operation's statements (pure); subclasses run them on their database."""

    _TABLE = layout.RECALL_TABLE

    # --- statements (pure) ------------------------------------------------------

    def _setup_script(self) -> _Script:
        raise NotImplementedError

    def _exists_script(self) -> _Script:
        raise NotImplementedError

    def _search_script(self, scope: str, terms: Sequence[str], limit: int) -> _Script:
        raise NotImplementedError

    def _insert_sql(self) -> str:
        raise NotImplementedError

    def _after_erase(self) -> list[_Sql]:
        return []

    def _placeholders(self, count: int) -> str:
        raise NotImplementedError

    def _where(self, scope: str, threads: Sequence[str] | None) -> tuple[str, tuple[Any, ...]]:
        if threads is None:
            return f"scope = {self._placeholders(1)}", (scope,)
        among = self._placeholders(len(threads))
        return f"scope = {self._placeholders(1)} AND thread_id IN ({among})", (scope, *threads)

    def _row_args(self, row: RecallRow) -> tuple[Any, ...]:
        return _values(row)

    def _add_script(self, rows: Sequence[RecallRow]) -> _Script:
        args = [self._row_args(row) for row in rows]
        return _Script([_Sql(self._insert_sql(), args, many=True)])

    def _rows_script(self, scope: str, threads: Sequence[str] | None) -> _Script:
        where, args = self._where(scope, threads)
        columns = ", ".join(_COLUMNS)
        sql = f"SELECT {columns} FROM {self._TABLE} WHERE {where} ORDER BY thread_id, seq"
        return _Script([_Sql(sql, args, fetch=True)], write=False)

    def _erase_script(self, scope: str, threads: Sequence[str] | None) -> _Script:
        where, args = self._where(scope, threads)
        count = f"SELECT count(*) FROM {self._TABLE} WHERE {where}"
        delete = f"DELETE FROM {self._TABLE} WHERE {where}"
        return _Script([_Sql(count, args, fetch=True), _Sql(delete, args), *self._after_erase()])

    # --- running (subclasses) ------------------------------------------------------

    def _execute(self, script: _Script) -> list[list[Any]]:
        raise NotImplementedError

    async def _aexecute(self, script: _Script) -> list[list[Any]]:
        raise NotImplementedError

    # --- the operations: sync ------------------------------------------------------

    def setup(self) -> None:
        if not self._ready:
            self._execute(self._setup_script())
            self._ready = True

    def _exists(self) -> bool:
        if not self._ready:
            (found,) = self._execute(self._exists_script())
            self._ready = bool(found and _first(found[0]))
        return self._ready

    def add(self, rows: Sequence[RecallRow]) -> None:
        if rows:
            self.setup()
            self._execute(self._add_script(rows))

    def search(self, scope: str, terms: Sequence[str], *, limit: int) -> list[RecallRow]:
        if not terms or limit < 1:
            return []
        self.setup()
        (found,) = self._execute(self._search_script(scope, terms, limit))
        return [_row(values) for values in found]

    def rows(self, scope: str, threads: Sequence[str] | None = None) -> list[RecallRow]:
        if (threads is not None and not threads) or not self._exists():
            return []
        (found,) = self._execute(self._rows_script(scope, threads))
        return [_row(values) for values in found]

    def erase(self, scope: str, threads: Sequence[str] | None = None) -> int:
        if (threads is not None and not threads) or not self._exists():
            return 0
        counted, *_ = self._execute(self._erase_script(scope, threads))
        return int(_first(counted[0]))

    # --- the operations: async (the same, awaiting each run) ---------------------------

    async def asetup(self) -> None:
        if not self._ready:
            await self._aexecute(self._setup_script())
            self._ready = True

    async def _aexists(self) -> bool:
        if not self._ready:
            (found,) = await self._aexecute(self._exists_script())
            self._ready = bool(found and _first(found[0]))
        return self._ready

    async def aadd(self, rows: Sequence[RecallRow]) -> None:
        if rows:
            await self.asetup()
            await self._aexecute(self._add_script(rows))

    async def asearch(self, scope: str, terms: Sequence[str], *, limit: int) -> list[RecallRow]:
        if not terms or limit < 1:
            return []
        await self.asetup()
        (found,) = await self._aexecute(self._search_script(scope, terms, limit))
        return [_row(values) for values in found]

    async def arows(self, scope: str, threads: Sequence[str] | None = None) -> list[RecallRow]:
        if (threads is not None and not threads) or not await self._aexists():
            return []
        (found,) = await self._aexecute(self._rows_script(scope, threads))
        return [_row(values) for values in found]

    async def aerase(self, scope: str, threads: Sequence[str] | None = None) -> int:
        if (threads is not None and not threads) or not await self._aexists():
            return 0
        counted, *_ = await self._aexecute(self._erase_script(scope, threads))
        return int(_first(counted[0]))


def _first(values: Any) -> Any:
    return next(iter(values.values())) if isinstance(values, dict) else values[0]


# --- SQLite ------------------------------------------------------------------------------


class _SqliteIndex(_SqlIndex):
    """SQLite: a table and an FTS5 index over it, on the store's own connection and lock.

    The FTS5 table holds no text of its own (``content=`` the rows table): the
    text is stored once. Deleted rows leave their terms in FTS5's index segments
    until those are merged, so an erase ends with FTS5's ``optimize``, which
    rewrites the index without them: after a ``VACUUM`` the file holds no word of
    what was forgotten.
    """

    _FTS = layout.RECALL_FTS_TABLE

    def _setup_script(self) -> _Script:
        table, fts = self._TABLE, self._FTS
        return _Script(
            [
                _Sql(
                    f"CREATE TABLE IF NOT EXISTS {table} (id INTEGER PRIMARY KEY, "
                    "scope TEXT NOT NULL, thread_id TEXT NOT NULL, seq INTEGER NOT NULL, "
                    "role TEXT NOT NULL, body TEXT NOT NULL, speaker TEXT, said_at TEXT, "
                    "logged_at TEXT, message_id TEXT, owner TEXT NOT NULL, "
                    "UNIQUE (scope, thread_id, seq))"
                ),
                _Sql(
                    f"CREATE VIRTUAL TABLE IF NOT EXISTS {fts} USING fts5(body, owner, "
                    f"content='{table}', content_rowid='id', "
                    "tokenize='porter unicode61 remove_diacritics 2')"
                ),
                _Sql(
                    f"CREATE TRIGGER IF NOT EXISTS {table}_added AFTER INSERT ON {table} "
                    f"BEGIN INSERT INTO {fts}(rowid, body, owner) "
                    "VALUES (new.id, new.body, new.owner); END"
                ),
                _Sql(
                    f"CREATE TRIGGER IF NOT EXISTS {table}_deleted AFTER DELETE ON {table} "
                    f"BEGIN INSERT INTO {fts}({fts}, rowid, body, owner) "
                    "VALUES ('delete', old.id, old.body, old.owner); END"
                ),
            ]
        )

    def _exists_script(self) -> _Script:
        sql = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
        return _Script([_Sql(sql, (self._FTS,), fetch=True)], write=False)

    def _placeholders(self, count: int) -> str:
        return ", ".join("?" * count)

    def _insert_sql(self) -> str:
        columns = ", ".join((*_COLUMNS, "owner"))
        return (
            f"INSERT OR IGNORE INTO {self._TABLE} ({columns}) "
            f"VALUES ({self._placeholders(len(_COLUMNS) + 1)})"
        )

    def _row_args(self, row: RecallRow) -> tuple[Any, ...]:
        return (*_values(row), _owner(row.scope))

    def _search_script(self, scope: str, terms: Sequence[str], limit: int) -> _Script:
        fts = self._FTS
        columns = ", ".join(f"r.{name}" for name in _COLUMNS)
        # The scope's token in the MATCH narrows the search to the scope's rows inside
        # the index (its cost follows the scope, not the database); the equality on
        # the key decides. bm25 weighs the owner column 0: it is the same for every row.
        match = f'owner : "{_owner(scope)}" AND body : ({fts5_query(terms)})'
        sql = (
            f"SELECT {columns} FROM {fts} JOIN {self._TABLE} AS r ON r.id = {fts}.rowid "
            f"WHERE {fts} MATCH ? AND r.scope = ? "
            f"ORDER BY bm25({fts}, 1.0, 0.0), r.logged_at DESC, r.seq DESC LIMIT ?"
        )
        return _Script([_Sql(sql, (match, scope, limit), fetch=True)], write=False)

    def _after_erase(self) -> list[_Sql]:
        fts = self._FTS
        return [_Sql(f"INSERT INTO {fts}({fts}) VALUES ('optimize')")]

    def _execute(self, script: _Script) -> list[list[Any]]:
        with _StoreParts.sqlite_connection(self.store) as conn:
            return _run_sqlite(conn, script)

    async def _aexecute(self, script: _Script) -> list[list[Any]]:
        store = self.store
        if _StoreParts.sqlite_is_async(store):
            async with _StoreParts.asqlite_connection(store) as conn:
                return await run_to_completion(_arun_aiosqlite(conn, script))
        # A SqliteStore (the async agent's ThreadedSqliteStore): one hop to a worker
        # thread for the whole script, run to its end even if the caller is cancelled.
        return await run_to_completion(asyncio.to_thread(self._execute, script))


def _owner(scope: str) -> str:
    """A scope's token in the FTS5 index: letters and digits only, one token, from its key."""
    return "s" + hashlib.sha256(scope.encode()).hexdigest()[:32]


def _run_sqlite(conn: Any, script: _Script) -> list[list[Any]]:
    found: list[list[Any]] = []
    # The store's connection is in autocommit mode: a write takes the file's write
    # lock at once (IMMEDIATE), so two writers wait on the busy timeout, not deadlock.
    if script.write:
        conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in script.statements:
            if statement.many:
                conn.executemany(statement.text, statement.args)
            else:
                cursor = conn.execute(statement.text, statement.args)
                if statement.fetch:
                    found.append(cursor.fetchall())
    except BaseException:
        if script.write:
            conn.execute("ROLLBACK")
        raise
    if script.write:
        conn.execute("COMMIT")
    return found


async def _arun_aiosqlite(conn: Any, script: _Script) -> list[list[Any]]:
    found: list[list[Any]] = []
    if script.write:
        await conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in script.statements:
            if statement.many:
                await conn.executemany(statement.text, statement.args)
            else:
                cursor = await conn.execute(statement.text, statement.args)
                if statement.fetch:
                    found.append(list(await cursor.fetchall()))
    except BaseException:
        if script.write:
            await conn.execute("ROLLBACK")
        raise
    if script.write:
        await conn.execute("COMMIT")
    return found


# --- PostgreSQL ------------------------------------------------------------------------

_PG_CONFIG = "english"
"""The text-search configuration of the index and of the queries: stems, drops stop words."""


class _PostgresIndex(_SqlIndex):
    """PostgreSQL: a table with a generated ``tsvector`` and a GIN index, on the store's pool."""

    def _setup_script(self) -> _Script:
        table = self._TABLE
        return _Script(
            [
                # Workers starting together race on CREATE ... IF NOT EXISTS (a
                # duplicate key in the catalog): one at a time, inside this transaction.
                _Sql("SELECT pg_advisory_xact_lock(hashtextextended('sleepagent:recall', 0))"),
                _Sql(
                    f"CREATE TABLE IF NOT EXISTS {table} (scope text NOT NULL, "
                    "thread_id text NOT NULL, seq integer NOT NULL, role text NOT NULL, "
                    "body text NOT NULL, speaker text, said_at text, logged_at text, "
                    "message_id text, "
                    f"terms tsvector GENERATED ALWAYS AS (to_tsvector('{_PG_CONFIG}', body)) "
                    "STORED, PRIMARY KEY (scope, thread_id, seq))"
                ),
                _Sql(f"CREATE INDEX IF NOT EXISTS {table}_terms ON {table} USING GIN (terms)"),
            ]
        )

    def _exists_script(self) -> _Script:
        sql = "SELECT to_regclass(%s) IS NOT NULL"
        return _Script([_Sql(sql, (self._TABLE,), fetch=True)], write=False)

    def _placeholders(self, count: int) -> str:
        return ", ".join(["%s"] * count)

    def _insert_sql(self) -> str:
        columns = ", ".join(_COLUMNS)
        return (
            f"INSERT INTO {self._TABLE} ({columns}) "
            f"VALUES ({self._placeholders(len(_COLUMNS))}) ON CONFLICT DO NOTHING"
        )

    def _search_script(self, scope: str, terms: Sequence[str], limit: int) -> _Script:
        # Each term is a bound parameter of its own plainto_tsquery (which reads
        # no operators), joined with tsquery's OR: the text never becomes syntax.
        query = " || ".join([f"plainto_tsquery('{_PG_CONFIG}', %s)"] * len(terms))
        columns = ", ".join(_COLUMNS)
        sql = (
            f"SELECT {columns} FROM {self._TABLE}, (SELECT {query} AS query) AS q "
            "WHERE scope = %s AND terms @@ q.query "
            "ORDER BY ts_rank(terms, q.query) DESC, logged_at DESC, seq DESC LIMIT %s"
        )
        return _Script([_Sql(sql, (*terms, scope, limit), fetch=True)], write=False)

    def _execute(self, script: _Script) -> list[list[Any]]:
        # A read needs no transaction of its own: the store's connections are in
        # autocommit mode (LangGraph opens them so), and BEGIN and COMMIT would be two
        # more round trips per turn. A connection of your own outside it gets one.
        with (
            _StoreParts.pg_connection(self.store) as conn,
            conn.transaction() if script.write or not conn.autocommit else nullcontext(),
        ):
            found: list[list[Any]] = []
            for statement in script.statements:
                with conn.cursor() as cursor:
                    if statement.many:
                        cursor.executemany(statement.text, statement.args)
                    else:
                        cursor.execute(statement.text, statement.args)
                        if statement.fetch:
                            found.append(cursor.fetchall())
            return found

    async def _aexecute(self, script: _Script) -> list[list[Any]]:
        if not _StoreParts.pg_is_async(self.store):
            return self._execute(script)  # a sync PostgresStore used from async code
        return await run_to_completion(self._apg(script))

    async def _apg(self, script: _Script) -> list[list[Any]]:
        async with (
            _StoreParts.apg_connection(self.store) as conn,
            conn.transaction() if script.write or not conn.autocommit else nullcontext(),
        ):
            found: list[list[Any]] = []
            for statement in script.statements:
                async with conn.cursor() as cursor:
                    if statement.many:
                        await cursor.executemany(statement.text, statement.args)
                    else:
                        await cursor.execute(statement.text, statement.args)
                        if statement.fetch:
                            found.append(await cursor.fetchall())
            return found


# --- choosing an index -------------------------------------------------------------------

_chosen: weakref.WeakKeyDictionary[BaseStore, RecallIndex] = weakref.WeakKeyDictionary()
_chosen_guard = threading.Lock()


def recall_index_for(store: BaseStore) -> RecallIndex:
    """The recall index of ``store``, chosen on first use and kept for the store's life.

    A store recall cannot search (any but LangGraph's in-memory, SQLite and
    PostgreSQL stores) gets an index that refuses to set up, add or search
    (``ConfigurationError``) and holds nothing to read or erase.

    """
    with _chosen_guard:
        index = _chosen.get(store)
        if index is None:
            index = _choose(store)
            _chosen[store] = index
        return index


def _choose(store: BaseStore) -> RecallIndex:
    from langgraph.store.memory import InMemoryStore

    if isinstance(store, InMemoryStore):
        return _MemoryIndex(store)
    try:
        from langgraph.store.sqlite import AsyncSqliteStore, SqliteStore
    except ImportError:
        pass
    else:
        if isinstance(store, SqliteStore | AsyncSqliteStore):
            return _SqliteIndex(store)
    try:
        from langgraph.store.postgres import AsyncPostgresStore, PostgresStore
    except ImportError:
        pass
    else:
        if isinstance(store, PostgresStore | AsyncPostgresStore):
            return _PostgresIndex(store)
    return _NoIndex(store)


class _NoIndex(RecallIndex):
    """A store recall cannot search: nothing was ever indexed there, so nothing to erase."""

    def _refuse(self) -> ConfigurationError:
        return ConfigurationError(
            "recall needs full-text search in the store's database, and sleepagent does not "
            f"know the store {type(self.store).__qualname__}: use InMemoryStore, SqliteStore "
            "or PostgresStore, or set recall_messages=0"
        )

    def setup(self) -> None:
        raise self._refuse()

    async def asetup(self) -> None:
        raise self._refuse()

    def add(self, rows: Sequence[RecallRow]) -> None:
        raise self._refuse()

    async def aadd(self, rows: Sequence[RecallRow]) -> None:
        raise self._refuse()

    def search(self, scope: str, terms: Sequence[str], *, limit: int) -> list[RecallRow]:
        raise self._refuse()

    async def asearch(self, scope: str, terms: Sequence[str], *, limit: int) -> list[RecallRow]:
        raise self._refuse()

    def rows(self, scope: str, threads: Sequence[str] | None = None) -> list[RecallRow]:
        return []

    async def arows(self, scope: str, threads: Sequence[str] | None = None) -> list[RecallRow]:
        return []

    def erase(self, scope: str, threads: Sequence[str] | None = None) -> int:
        return 0

    async def aerase(self, scope: str, threads: Sequence[str] | None = None) -> int:
        return 0
