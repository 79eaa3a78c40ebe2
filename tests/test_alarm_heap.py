"""One heap holds every thread's alarm; the real timer is armed only for the earliest."""

from __future__ import annotations

import threading

from sleepagent.scheduling.alarmheap import AlarmHeap
from sleepagent.scheduling.apscheduler import BackgroundIdleScheduler
from sleepagent.scheduling.base import SleepJob
from sleepagent.scheduling.policy import Reason

WAIT_S = 10.0


def job(thread_id: str, due_at: float) -> SleepJob:
    return SleepJob(thread_id, None, due_at, Reason.IDLE)


def test_due_alarms_come_out_earliest_first_and_later_ones_stay():
    alarms = AlarmHeap()
    for thread_id, due in [("c", 3.0), ("a", 1.0), ("b", 2.0), ("d", 9.0)]:
        alarms.set(job(thread_id, due))
    assert [j.thread_id for j in alarms.pop_due(3.0)] == ["a", "b", "c"]
    assert alarms.next_due() == 9.0
    assert len(alarms) == 1


def test_a_new_alarm_replaces_the_threads_old_one():
    alarms = AlarmHeap()
    alarms.set(job("t", 1.0))
    alarms.set(job("t", 5.0))  # a turn pushed the idle deadline back
    assert alarms.pop_due(4.0) == []
    assert [j.due_at for j in alarms.pop_due(5.0)] == [5.0]
    assert alarms.next_due() is None


def test_set_says_whether_the_alarm_became_the_earliest():
    alarms = AlarmHeap()
    assert alarms.set(job("a", 5.0))
    assert not alarms.set(job("b", 7.0))
    assert alarms.set(job("c", 1.0))
    assert not alarms.set(job("a", 8.0))  # a's own deadline moves later


def test_a_cancelled_alarm_never_comes_due():
    alarms = AlarmHeap()
    alarms.set(job("a", 1.0))
    alarms.set(job("b", 2.0))
    alarms.cancel("a")
    assert alarms.next_due() == 2.0
    assert [j.thread_id for j in alarms.pop_due(10.0)] == ["b"]


def test_replacing_alarms_many_times_keeps_the_heap_bounded_by_the_live_ones():
    alarms = AlarmHeap()
    for turn in range(10_000):
        alarms.set(job(f"t{turn % 10}", float(turn)))
    assert len(alarms) == 10
    assert len(alarms._heap) <= 2 * 10 + 64 + 1
    assert sorted(j.due_at for j in alarms.pop_due(1e9)) == [float(t) for t in range(9990, 10_000)]


def test_the_thread_scheduler_keeps_one_apscheduler_job_for_many_threads():
    fired: list[str] = []
    done = threading.Event()

    def runner(due: SleepJob) -> None:
        fired.append(due.thread_id)
        if len(fired) == 3:
            done.set()

    scheduler = BackgroundIdleScheduler()
    scheduler.start(runner, max_concurrent=2)
    try:
        now = scheduler.now()
        for n in range(100):
            scheduler.set(job(f"later{n}", now + 3600 + n))
        assert scheduler._scheduler is not None
        assert len(scheduler._scheduler.get_jobs()) == 1
        for n in range(3):
            scheduler.set(job(f"soon{n}", now))
        assert done.wait(WAIT_S)
        assert sorted(fired) == ["soon0", "soon1", "soon2"]
        assert len(scheduler._scheduler.get_jobs()) == 1  # re-armed for the later ones
    finally:
        scheduler.close()
    scheduler.close()  # idempotent
