"""Identity of a graph run, carried in LangGraph's typed run context."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from langgraph.runtime import Runtime, get_runtime

from sleepagent.config import SleepConfig
from sleepagent.errors import ConfigurationError
from sleepagent.memory.blockstore import BlockStore
from sleepagent.scope import Scope, resolve_scope

__all__ = ["RunTarget", "SleepContext", "current_target", "identity_of", "iso"]


@dataclass(frozen=True)
class SleepContext:
    """Who a graph run acts for. The memory scope is derived from it, never from model output.

    Attributes:
        thread_id: The conversation. For a sleep run, the conversation whose
            transcript it reads (the run itself executes on a companion thread).
            Empty means the thread the run executes on (LangGraph Server builds
            the context from a run's ``context`` field, which a chat run may omit).
        user_id: The user, when memory should follow them across threads.

    """

    thread_id: str = ""
    user_id: str | None = None


def identity_of(runtime: Runtime[SleepContext] | Runtime[None]) -> SleepContext:
    """The run's identity: its context, or else the thread it runs on.

    Raises:
        ConfigurationError: If neither a context nor a thread id is available.

    """
    context = runtime.context
    if isinstance(context, dict):
        context = SleepContext(context.get("thread_id") or "", context.get("user_id"))
    if not isinstance(context, SleepContext):
        context = SleepContext()
    if context.thread_id:
        return context
    info = runtime.execution_info
    if info is not None and info.thread_id:
        return SleepContext(thread_id=info.thread_id, user_id=context.user_id)
    raise ConfigurationError(
        "no identity for this run: pass context=SleepContext(thread_id=...) "
        "or run the graph with a checkpointer and a thread_id"
    )


@dataclass(frozen=True)
class RunTarget:
    """What a node acts on, resolved from the run's identity.

    Attributes:
        identity: Who the run acts for.
        scope: The memory scope derived from it.
        blocks: The scope's memory on the run's store.
        run_id: LangGraph's id of the run, when it has one.

    """

    identity: SleepContext
    scope: Scope
    blocks: BlockStore
    run_id: str | None


def current_target(config: SleepConfig) -> RunTarget:
    """The target of the graph run this node executes in.

    Raises:
        ConfigurationError: If the graph was compiled without a store, or the
            run has no identity.

    """
    runtime = get_runtime(SleepContext)
    if runtime.store is None:
        raise ConfigurationError("the sleepagent graph needs a store: compile it with store=...")
    identity = identity_of(runtime)
    scope = resolve_scope(config.scope, thread_id=identity.thread_id, user_id=identity.user_id)
    run_id = runtime.execution_info.run_id if runtime.execution_info else None
    return RunTarget(identity, scope, BlockStore(runtime.store, config.blocks), run_id)


def iso(timestamp: float) -> str:
    """ISO 8601 text of a POSIX timestamp, in UTC."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat()
