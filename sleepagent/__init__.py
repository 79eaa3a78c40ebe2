"""sleepagent: sleep-time compute for LangGraph conversational agents.

A primary agent answers the user from memory blocks; between turns a
sleep-time agent reads what happened and rewrites those blocks, so the next
answer starts from a better, pre-computed context.
"""

from sleepagent._version import __version__
from sleepagent.agent.facades import AsyncSleepTimeAgent, SleepTimeAgent
from sleepagent.config import ScopePolicy, SleepConfig, SleepEditMode, SleepThinking, UserFacts
from sleepagent.errors import (
    BlockLimitError,
    ConfigurationError,
    LayoutVersionError,
    MemoryConflictError,
    MemoryEditError,
    MessageRecordError,
    MessageTooLongError,
    ModelCallError,
    ReadOnlyBlockError,
    ScopeMismatchError,
    SleepAgentError,
    UnknownBlockError,
    WrongModeError,
)
from sleepagent.graph.build import SleepAgentState, build_graph, sleep_request, sleep_thread_id
from sleepagent.graph.context import SleepContext
from sleepagent.memory.blocks import DEFAULT_BLOCKS, BlockRole, MemoryBlock
from sleepagent.memory.blockstore import BlockStore, HistoryEntry, ThreadPosition, TurnRead
from sleepagent.memory.imported import ImportedMessage
from sleepagent.models import ModelOptions
from sleepagent.results import (
    BlockDiff,
    ChatResult,
    Conflict,
    FailedPage,
    Forgotten,
    ImportResult,
    RunRecord,
    SleepOutcome,
    SleepResult,
)
from sleepagent.scope import Scope
from sleepagent.usage import Usage

__all__ = [
    "DEFAULT_BLOCKS",
    "AsyncSleepTimeAgent",
    "BlockDiff",
    "BlockLimitError",
    "BlockRole",
    "BlockStore",
    "ChatResult",
    "ConfigurationError",
    "LayoutVersionError",
    "Conflict",
    "FailedPage",
    "Forgotten",
    "HistoryEntry",
    "ImportResult",
    "ImportedMessage",
    "MemoryBlock",
    "MemoryConflictError",
    "MemoryEditError",
    "MessageRecordError",
    "MessageTooLongError",
    "ModelCallError",
    "ModelOptions",
    "ReadOnlyBlockError",
    "RunRecord",
    "Scope",
    "ScopeMismatchError",
    "ScopePolicy",
    "SleepAgentError",
    "SleepAgentState",
    "SleepConfig",
    "SleepContext",
    "SleepEditMode",
    "SleepOutcome",
    "SleepResult",
    "SleepThinking",
    "SleepTimeAgent",
    "ThreadPosition",
    "TurnRead",
    "UnknownBlockError",
    "Usage",
    "UserFacts",
    "WrongModeError",
    "__version__",
    "build_graph",
    "sleep_request",
    "sleep_thread_id",
]
