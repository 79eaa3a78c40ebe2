"""Idle timers that start sleep-time compute between user turns."""

from sleepagent.scheduling.apscheduler import AsyncIOIdleScheduler, BackgroundIdleScheduler
from sleepagent.scheduling.base import IdleScheduler, JobRunner, SleepJob
from sleepagent.scheduling.events import EventKind, SleepEvent, SleepEvents
from sleepagent.scheduling.manual import ManualClock, ManualScheduler
from sleepagent.scheduling.policy import Reason
from sleepagent.scheduling.precedence import TurnsInFlight

__all__ = [
    "AsyncIOIdleScheduler",
    "BackgroundIdleScheduler",
    "EventKind",
    "IdleScheduler",
    "JobRunner",
    "ManualClock",
    "ManualScheduler",
    "Reason",
    "SleepEvent",
    "SleepEvents",
    "SleepJob",
    "TurnsInFlight",
]
