"""Memory scopes: who owns a set of blocks, derived from the caller's identity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sleepagent.config import ScopePolicy
from sleepagent.errors import ConfigurationError
from sleepagent.memory.storable import require_storable

__all__ = ["Scope", "resolve_scope"]


@dataclass(frozen=True)
class Scope:
    """The owner of a set of memory blocks.

    Attributes:
        kind: ``thread`` (one conversation) or ``user`` (a user across threads).
        id: The thread id or user id.

    """

    kind: Literal["thread", "user"]
    id: str

    @property
    def key(self) -> str:
        """Stable text form, e.g. ``user:alice``."""
        return f"{self.kind}:{self.id}"

    @classmethod
    def parse(cls, key: str) -> Scope:
        """Inverse of :attr:`key`.

        Raises:
            ValueError: If ``key`` is not ``thread:<id>`` or ``user:<id>``.

        """
        kind, _, scope_id = key.partition(":")
        if kind == "thread" and scope_id:
            return cls("thread", scope_id)
        if kind == "user" and scope_id:
            return cls("user", scope_id)
        raise ValueError(f"not a memory scope key: {key!r}")


def resolve_scope(policy: ScopePolicy, *, thread_id: str, user_id: str | None) -> Scope:
    """The memory scope of a call, from the caller's identity only.

    Raises:
        ConfigurationError: If an id is empty or cannot be stored (see
            :mod:`sleepagent.memory.storable`), or ``policy`` is USER without ``user_id``.

    """
    if not thread_id or not isinstance(thread_id, str):
        raise ConfigurationError(f"thread_id must be a non-empty string, got {thread_id!r}")
    if user_id is not None and (not user_id or not isinstance(user_id, str)):
        raise ConfigurationError(f"user_id must be a non-empty string or None, got {user_id!r}")
    require_storable(thread_id, what="thread_id")
    if user_id is not None:
        require_storable(user_id, what="user_id")
    if policy is ScopePolicy.THREAD:
        return Scope("thread", thread_id)
    if user_id is not None:
        return Scope("user", user_id)
    if policy is ScopePolicy.USER:
        raise ConfigurationError(
            "this agent keeps memory per user (ScopePolicy.USER): pass user_id=..."
        )
    return Scope("thread", thread_id)
