"""Test helpers, public so you can test your own bots offline.

:class:`ScriptedChatModel` plays back scripted replies and tool calls in
order, and fails the test when it is called more often than scripted, so an
unexpected model call never passes silently. :func:`finish`, :func:`rethink`
and :func:`insert` write the sleep-model replies a script needs most, and
:class:`EventRecorder` records sleep-run events for the test to assert on.
"""

from sleepagent.scheduling.manual import ManualClock, ManualScheduler
from sleepagent.testing.events import EventRecorder
from sleepagent.testing.loopback import (
    Completion,
    Fault,
    FaultKind,
    LoopbackOpenAI,
    LoopbackReply,
    LoopbackStep,
    PromptLogprobs,
    RecordedRequest,
    WireToolCall,
    malformed,
    malformed_tool_arguments,
    rate_limited,
    raw_call,
    server_error,
    slow,
    truncated,
    wire_call,
)
from sleepagent.testing.replies import finish, insert, rethink
from sleepagent.testing.scripted import (
    ScriptedCall,
    ScriptedChatModel,
    ScriptStep,
    ai_tool_calls,
    tool_call,
)
from sleepagent.testing.simulation import (
    Ask,
    MemoryVersion,
    Say,
    SimulatedUser,
    Simulation,
    Step,
    Turn,
    Wait,
    asimulate,
    memory_in_prompt,
    said_in_facts_prompt,
    simulate,
    transcript_in_prompt,
)

__all__ = [
    "Completion",
    "Fault",
    "FaultKind",
    "LoopbackOpenAI",
    "LoopbackReply",
    "LoopbackStep",
    "ManualClock",
    "PromptLogprobs",
    "RecordedRequest",
    "WireToolCall",
    "malformed",
    "malformed_tool_arguments",
    "rate_limited",
    "raw_call",
    "server_error",
    "slow",
    "truncated",
    "wire_call",
    "ManualScheduler",
    "ScriptStep",
    "ScriptedCall",
    "ScriptedChatModel",
    "ai_tool_calls",
    "tool_call",
    "Ask",
    "MemoryVersion",
    "Say",
    "SimulatedUser",
    "Simulation",
    "Step",
    "Turn",
    "Wait",
    "asimulate",
    "memory_in_prompt",
    "said_in_facts_prompt",
    "simulate",
    "transcript_in_prompt",
    "EventRecorder",
    "finish",
    "insert",
    "rethink",
]
