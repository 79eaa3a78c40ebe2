"""The staged working copy and the commit merge (sleepagent.memory.staging)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sleepagent.errors import BlockLimitError, MemoryEditError, UnknownBlockError
from sleepagent.memory.blocks import InsertEdit, MemoryBlock, ReplaceEdit, RethinkEdit
from sleepagent.memory.staging import StagedMemory, plan_commit

HUMAN = MemoryBlock(label="human", value="Name: Ada\nCity: Paris", version=3, limit=100)
NOTES = MemoryBlock(label="notes", value="todo: none", version=1, limit=100)


def staged(*edits) -> StagedMemory:
    memory = StagedMemory.of([HUMAN, NOTES])
    for edit in edits:
        memory, _ = memory.stage(edit)
    return memory


def store(*blocks: MemoryBlock) -> dict[str, MemoryBlock]:
    return {block.label: block for block in blocks}


def changed_elsewhere(block: MemoryBlock, value: str) -> MemoryBlock:
    """The block as another writer committed it after the run read it."""
    return replace(block, value=value, version=block.version + 1)


# --- StagedMemory ---------------------------------------------------------------


def test_stage_edits_the_working_copy_and_returns_the_edited_block():
    memory, edited = StagedMemory.of([HUMAN]).stage(ReplaceEdit("human", "Paris", "Berlin"))
    assert edited.value == "Name: Ada\nCity: Berlin"
    assert memory.block("human").value == "Name: Ada\nCity: Berlin"


def test_stage_leaves_the_base_untouched():
    original = StagedMemory.of([HUMAN])
    memory, _ = original.stage(ReplaceEdit("human", "Paris", "Berlin"))
    assert memory.base["human"] == HUMAN
    assert original.block("human") == HUMAN
    assert original.edits == ()


def test_staged_edits_build_on_each_other():
    memory = staged(ReplaceEdit("human", "Paris", "Berlin"), InsertEdit("human", "Job: chemist"))
    assert memory.block("human").value == "Name: Ada\nCity: Berlin\nJob: chemist"
    assert memory.touched == ("human",)


def test_refused_edit_raises_and_leaves_the_working_copy_unchanged():
    memory = staged(ReplaceEdit("human", "Paris", "Berlin"))
    with pytest.raises(MemoryEditError, match="found 0 times"):
        memory.stage(ReplaceEdit("human", "Paris", "Rome"))
    assert memory.block("human").value == "Name: Ada\nCity: Berlin"
    assert len(memory.edits) == 1


def test_edit_over_the_limit_is_refused_by_stage():
    with pytest.raises(BlockLimitError):
        staged().stage(InsertEdit("human", "x" * 100))


def test_unknown_label_raises_listing_the_known_labels():
    with pytest.raises(UnknownBlockError, match=r"no block 'nope'.*'human', 'notes'") as caught:
        staged().stage(RethinkEdit("nope", "x"))
    assert caught.value.label == "nope"


def test_unknown_block_error_is_also_a_key_error_with_an_unquoted_message():
    with pytest.raises(KeyError) as caught:
        staged().block("nope")
    assert str(caught.value).startswith("Edit refused: there is no block 'nope'")


def test_blocks_lists_every_block_in_render_order_with_edits_applied():
    memory = staged(RethinkEdit("notes", "todo: call Ada"))
    assert [block.label for block in memory.blocks()] == ["human", "notes"]
    assert memory.blocks()[1].value == "todo: call Ada"


def test_touched_lists_labels_in_first_edit_order():
    memory = staged(InsertEdit("notes", "a"), InsertEdit("human", "b"), InsertEdit("notes", "c"))
    assert memory.touched == ("notes", "human")


def test_staged_memory_round_trips_through_a_dict():
    memory = staged(
        ReplaceEdit("human", "Paris", "Berlin"),
        InsertEdit("notes", "call back", 0),
        RethinkEdit("notes", "fresh"),
    )
    restored = StagedMemory.from_dict(memory.to_dict())
    assert restored == memory
    assert list(restored.base) == ["human", "notes"]
    assert restored.blocks() == memory.blocks()


# --- plan_commit ----------------------------------------------------------------


def test_commit_of_an_unchanged_block_writes_the_next_version_with_a_diff():
    plan = plan_commit(staged(ReplaceEdit("human", "Paris", "Berlin")), store(HUMAN, NOTES))
    assert plan.conflicts == ()
    (written,) = plan.writes
    assert (written.label, written.value, written.version) == (
        "human",
        "Name: Ada\nCity: Berlin",
        4,
    )
    (diff,) = plan.diffs
    assert (diff.before, diff.after) == (HUMAN.value, written.value)
    assert (diff.version_before, diff.version_after, diff.reapplied) == (3, 4, False)


def test_commit_keeps_the_block_settings_from_the_store():
    current = replace(HUMAN, description="the user", limit=90)
    plan = plan_commit(staged(ReplaceEdit("human", "Paris", "Berlin")), store(current, NOTES))
    (written,) = plan.writes
    assert (written.description, written.limit) == ("the user", 90)


def test_commit_reapplies_edits_on_a_block_changed_meanwhile():
    memory = staged(ReplaceEdit("human", "Paris", "Berlin"), InsertEdit("human", "Job: chemist"))
    now = changed_elsewhere(HUMAN, "Name: Ada Lovelace\nCity: Paris")
    plan = plan_commit(memory, store(now, NOTES))
    assert plan.conflicts == ()
    (written,) = plan.writes
    assert written.value == "Name: Ada Lovelace\nCity: Berlin\nJob: chemist"
    assert written.version == now.version + 1
    (diff,) = plan.diffs
    assert diff.reapplied is True
    assert (diff.before, diff.version_before) == (now.value, now.version)


def test_commit_reports_a_conflict_when_a_replace_no_longer_matches():
    memory = staged(ReplaceEdit("human", "Paris", "Berlin"))
    now = changed_elsewhere(HUMAN, "Name: Ada\nCity: Rome")
    plan = plan_commit(memory, store(now, NOTES))
    assert plan.writes == ()
    assert plan.diffs == ()
    (conflict,) = plan.conflicts
    assert conflict.label == "human"
    assert "no longer applies" in conflict.reason
    assert (conflict.seen_version, conflict.current_version) == (3, 4)
    assert conflict.dropped == (
        {"label": "human", "old": "Paris", "new": "Berlin", "kind": "replace"},
    )


def test_commit_reports_a_conflict_when_a_reapplied_edit_exceeds_the_limit():
    memory = staged(InsertEdit("human", "x" * 70))
    now = changed_elsewhere(HUMAN, HUMAN.value + "\n" + "y" * 40)
    plan = plan_commit(memory, store(now, NOTES))
    assert plan.writes == ()
    assert "limit" in plan.conflicts[0].reason


def test_commit_never_overwrites_a_changed_block_with_a_rethink():
    memory = staged(RethinkEdit("human", "Name: Ada\nCity: Berlin"))
    now = changed_elsewhere(HUMAN, "Name: Ada\nCity: Paris\nLikes: tea")
    plan = plan_commit(memory, store(now, NOTES))
    assert plan.writes == ()
    (conflict,) = plan.conflicts
    assert "rewritten whole" in conflict.reason
    assert conflict.dropped[0]["kind"] == "rethink"


def test_commit_applies_a_rethink_on_an_unchanged_block():
    plan = plan_commit(staged(RethinkEdit("human", "Name: Ada")), store(HUMAN, NOTES))
    assert [block.value for block in plan.writes] == ["Name: Ada"]


def test_commit_skips_an_edit_that_changes_nothing():
    plan = plan_commit(staged(ReplaceEdit("human", "Paris", "Paris")), store(HUMAN, NOTES))
    assert plan.writes == ()
    assert plan.diffs == ()
    assert plan.conflicts == ()


def test_commit_skips_edits_that_cancel_out():
    memory = staged(ReplaceEdit("human", "Paris", "Rome"), ReplaceEdit("human", "Rome", "Paris"))
    assert plan_commit(memory, store(HUMAN, NOTES)).writes == ()


def test_commit_skips_labels_the_run_did_not_touch():
    plan = plan_commit(staged(InsertEdit("notes", "buy milk")), store(HUMAN, NOTES))
    assert [block.label for block in plan.writes] == ["notes"]


def test_commit_writes_one_label_and_reports_the_other_in_conflict():
    memory = staged(ReplaceEdit("human", "Paris", "Berlin"), InsertEdit("notes", "buy milk"))
    now_human = changed_elsewhere(HUMAN, "Name: Ada\nCity: Oslo")
    plan = plan_commit(memory, store(now_human, NOTES))
    assert [conflict.label for conflict in plan.conflicts] == ["human"]
    assert [(block.label, block.value, block.version) for block in plan.writes] == [
        ("notes", "todo: none\nbuy milk", 2)
    ]
    assert [diff.label for diff in plan.diffs] == ["notes"]


def test_commit_of_a_never_written_block_starts_at_version_one():
    declared = MemoryBlock(label="learned", value="start")
    memory, _ = StagedMemory.of([declared]).stage(InsertEdit("learned", "fact"))
    plan = plan_commit(memory, {})
    (written,) = plan.writes
    assert (written.value, written.version) == ("start\nfact", 1)
    assert plan.diffs[0].reapplied is False
