"""A read-only LangGraph store over LangGraph Server's store API, through ``langgraph-sdk``.

The inspector reads memory with :class:`~sleepagent.memory.blockstore.BlockStore`, which
takes any ``BaseStore``. Inside LangGraph Server (a custom route), the
documented way to reach the server's store is its own HTTP API, which
``langgraph_sdk.get_client(url=None)`` calls in-process. This adapter turns the
store operations BlockStore's read methods use (get, search, list namespaces)
into those calls. Writes are refused: the inspector is read-only.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from langgraph.store.base import (
    BaseStore,
    GetOp,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    Result,
    SearchOp,
)

from sleepagent.errors import SleepAgentError, WrongModeError

__all__ = ["ReadOnlyStoreError", "ServerStore"]


class ReadOnlyStoreError(SleepAgentError, PermissionError):
    """A write reached the inspector's read-only store."""


class ServerStore(BaseStore):
    """Reads LangGraph Server's store through a ``langgraph-sdk`` async client.

    Args:
        client: A ``langgraph_sdk`` async client; ``get_client(url=None)`` inside
            the server, or ``get_client(url=...)`` for a remote one.

    """

    def __init__(self, client: Any) -> None:
        self.client = client

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Not supported: the SDK client is async."""
        raise WrongModeError("ServerStore is async only: use abatch (BlockStore's a* methods)")

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Run read operations one by one against the server.

        Raises:
            ReadOnlyStoreError: For any write.

        """
        return [await self._one(op) for op in ops]

    async def _one(self, op: Op) -> Result:
        from langgraph_sdk.errors import NotFoundError

        if not isinstance(op, GetOp | SearchOp | ListNamespacesOp):
            raise ReadOnlyStoreError(
                f"the memory inspector only reads; refused {type(op).__name__} on LangGraph Server"
            )
        store = self.client.store
        if isinstance(op, GetOp):
            try:
                found = await store.get_item(list(op.namespace), key=op.key)
            except NotFoundError:
                return None
            return _item(found) if found else None
        if isinstance(op, SearchOp):
            page = await store.search_items(
                list(op.namespace_prefix),
                filter=op.filter,
                limit=op.limit,
                offset=op.offset,
                query=op.query,
            )
            return [_item(found) for found in page.get("items", [])]
        prefix, suffix = _conditions(op.match_conditions)
        page = await store.list_namespaces(
            prefix=prefix, suffix=suffix, max_depth=op.max_depth, limit=op.limit, offset=op.offset
        )
        return [tuple(namespace) for namespace in page.get("namespaces", [])]


def _conditions(
    conditions: tuple[MatchCondition, ...] | None,
) -> tuple[list[str] | None, list[str] | None]:
    prefix = suffix = None
    for condition in conditions or ():
        if condition.match_type == "prefix":
            prefix = list(condition.path)
        else:
            suffix = list(condition.path)
    return prefix, suffix


def _item(data: dict[str, Any]) -> Item:
    return Item(
        value=data["value"],
        key=data["key"],
        namespace=tuple(data["namespace"]),
        created_at=_time(data.get("created_at")),
        updated_at=_time(data.get("updated_at")),
    )


def _time(value: str | None) -> datetime:
    if not value:
        return datetime.fromtimestamp(0)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
