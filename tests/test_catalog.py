"""The read-only catalog of a memory database, on every backend, sync and async."""

from __future__ import annotations

from typing import Any

from sleepagent import MemoryBlock, Scope, SleepOutcome
from sleepagent.memory.blockstore import ActiveRun, BlockStore
from sleepagent.store.catalog import Catalog
from sleepagent.store.locking import arun_lock, run_lock
from sleepagent.testing import ai_tool_calls, tool_call


def learn(value: str, label: str = "human") -> Any:
    return ai_tool_calls(
        tool_call("memory_rethink", label=label, new_value=value), tool_call("memory_finish")
    )


def query(driver, method: str, *args: Any, **kwargs: Any) -> Any:
    """``Catalog(store).method(...)``, or its ``a``-twin in async mode."""
    catalog = Catalog(driver.agent.blocks.store)
    if driver.loop is None:
        return getattr(catalog, method)(*args, **kwargs)
    return driver.loop.run_until_complete(getattr(catalog, f"a{method}")(*args, **kwargs))


def test_scopes_lists_each_scope_with_its_threads_pending_work_usage_and_last_run(make_agent):
    agent, *_ = make_agent(["hi", "hello", "hey"], [learn("Ada, vegetarian")])
    agent.chat("I'm Ada", thread_id="t1", user_id="ada.l")
    agent.sleep(thread_id="t1", user_id="ada.l")
    agent.chat("Dinner?", thread_id="t2", user_id="ada.l")
    agent.chat("Hello", thread_id="solo")

    scopes = {summary.scope.key: summary for summary in query(agent, "scopes")}
    assert set(scopes) == {"user:ada.l", "thread:solo"}, "ids with dots come back decoded"
    ada = scopes["user:ada.l"]
    assert ada.labels == ("human",), "only stored blocks, no never-written defaults"
    assert sorted(thread.thread_id for thread in ada.threads) == ["t1", "t2"]
    assert ada.pending == 2, "t2's turn waits for a sleep run; t1 was covered"
    assert ada.last_run is not None
    assert (ada.last_run.reason, ada.last_run.thread_id, ada.last_run.outcome) == (
        "manual",
        "t1",
        SleepOutcome.EDITED,
    )
    assert [diff.label for diff in ada.last_run.diffs] == ["human"]
    assert ada.failed_pages == ()
    assert ada.usage["chat"].calls == 2 and ada.usage["sleep"].calls == 1
    solo = scopes["thread:solo"]
    assert (solo.labels, solo.pending, solo.last_run) == ((), 2, None)


def test_an_unknown_scope_is_none_and_a_known_one_is_summarised(make_agent):
    agent, *_ = make_agent(["hi"])
    agent.chat("Hello", thread_id="t1", user_id="bob")
    assert query(agent, "scope", Scope("user", "nobody")) is None
    bob = query(agent, "scope", Scope("user", "bob"))
    assert bob is not None and bob.pending == 2 and bob.labels == ()


def test_blocks_are_the_stored_ones_unless_declared_blocks_are_given(make_agent):
    agent, *_ = make_agent(["hi"], [learn("Ada")])
    agent.chat("I'm Ada", thread_id="t1", user_id="ada")
    agent.sleep(thread_id="t1", user_id="ada")
    scope = Scope("user", "ada")
    assert [block.label for block in query(agent, "blocks", scope)] == ["human"]
    declared = [MemoryBlock(label="notes", value="start"), MemoryBlock(label="human")]
    overlaid = query(agent, "blocks", scope, declared=declared)
    assert [(block.label, block.value, block.version) for block in overlaid] == [
        ("notes", "start", 0),
        ("human", "Ada", 1),
    ]


def test_history_gives_each_version_with_its_diff_from_the_one_before(make_agent):
    agent, *_ = make_agent(["a", "b"], [learn("Ada"), learn("Ada\nvegetarian")])
    for text in ("I'm Ada", "I'm vegetarian"):
        agent.chat(text, thread_id="t1", user_id="ada")
        agent.sleep(thread_id="t1", user_id="ada")
    agent.write_memory("human", "Ada\nvegan", thread_id="t1", user_id="ada")

    steps = query(agent, "history", Scope("user", "ada"), "human")
    assert [(s.entry.version, s.entry.phase, s.entry.reason) for s in steps] == [
        (1, "sleep", "manual"),
        (2, "sleep", "manual"),
        (3, "user", None),
    ]
    assert (steps[0].diff.before, steps[0].diff.version_before) == ("", 0)
    assert "+vegetarian" in steps[1].diff.unified()
    assert "-vegetarian\n+vegan" in steps[2].diff.unified()


def test_a_store_with_nothing_in_it_has_no_scopes_and_no_threads(make_agent):
    agent, *_ = make_agent()
    assert query(agent, "scopes") == []
    assert query(agent, "threads") == []


def test_runs_are_newest_first_with_how_each_ended(make_agent):
    unchanged = ai_tool_calls(tool_call("memory_finish"))
    agent, *_ = make_agent(["a", "b"], [learn("Ada"), unchanged])
    for text in ("I'm Ada", "nice weather"):
        agent.chat(text, thread_id="t1", user_id="ada")
        agent.sleep(thread_id="t1", user_id="ada")
    runs = query(agent, "runs", Scope("user", "ada"))
    assert [run.outcome for run in runs] == [SleepOutcome.UNCHANGED, SleepOutcome.EDITED]
    (latest,) = query(agent, "runs", Scope("user", "ada"), limit=1)
    assert latest.run_id == runs[0].run_id


def test_a_scope_is_running_only_while_a_run_holds_its_run_lock(make_agent):
    agent, *_ = make_agent(["hi"], [learn("Ada")])
    agent.chat("I'm Ada", thread_id="t1", user_id="ada")
    agent.sleep(thread_id="t1", user_id="ada")
    scope = Scope("user", "ada")
    assert query(agent, "running", scope) is None, "a run that ended cleared its marker"

    store = agent.agent.blocks.store
    marker = ActiveRun("t1", "idle", "2026-01-01T10:00:00+00:00")
    catalog = Catalog(store)

    def sync_case() -> tuple[ActiveRun | None, ActiveRun | None]:
        BlockStore(store, ()).mark_running(scope, marker)
        stale = catalog.running(scope)
        with run_lock(store, scope, wait=True):
            return stale, catalog.running(scope)

    async def async_case() -> tuple[ActiveRun | None, ActiveRun | None]:
        await BlockStore(store, ()).amark_running(scope, marker)
        stale = await catalog.arunning(scope)
        async with arun_lock(store, scope, wait=True):
            return stale, await catalog.arunning(scope)

    loop = agent.loop
    stale, held = sync_case() if loop is None else loop.run_until_complete(async_case())
    assert stale is None, "the marker of a run killed before it ended, with its lock free"
    assert held == marker, "a run holds the lock: it is in flight"
