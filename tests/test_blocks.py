"""Memory blocks and the pure edit operations on them (sleepagent.memory.blocks)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sleepagent.errors import (
    BlockLimitError,
    ConfigurationError,
    MemoryEditError,
    ReadOnlyBlockError,
)
from sleepagent.memory.blocks import (
    InsertEdit,
    MemoryBlock,
    ReplaceEdit,
    RethinkEdit,
    apply_edit,
    edit_from_dict,
    edit_to_dict,
    insert,
    replace_text,
    rethink,
    validate_declarations,
)


def block(value: str = "", **kwargs) -> MemoryBlock:
    return MemoryBlock(label="human", value=value, **kwargs)


# --- replace_text ---------------------------------------------------------------


def test_replace_changes_the_one_matching_text():
    edited = replace_text(block("Name: Ada\nCity: Paris"), "Paris", "Berlin")
    assert edited.value == "Name: Ada\nCity: Berlin"


def test_replace_with_empty_text_deletes_the_match():
    assert replace_text(block("likes tea, coffee"), ", coffee", "").value == "likes tea"


def test_replace_refuses_text_not_found():
    with pytest.raises(MemoryEditError, match="found 0 times") as caught:
        replace_text(block("likes tea"), "coffee", "juice")
    assert caught.value.label == "human"
    assert "Copy the text exactly" in str(caught.value)


def test_replace_refuses_text_found_twice():
    with pytest.raises(MemoryEditError, match="found 2 times") as caught:
        replace_text(block("tea, then more tea"), "tea", "coffee")
    assert "more surrounding text" in str(caught.value)


def test_replace_refuses_text_found_three_times():
    with pytest.raises(MemoryEditError, match="found 3 times"):
        replace_text(block("a a a"), "a", "b")


def test_replace_refuses_text_that_matches_twice_with_overlap():
    with pytest.raises(MemoryEditError, match="found 2 times"):
        replace_text(block("ha ha ha"), "ha ha", "ho ho")


def test_replace_refuses_empty_old_text():
    with pytest.raises(MemoryEditError, match="'old' is empty"):
        replace_text(block("likes tea"), "", "x")


def test_replace_returns_a_new_block_and_leaves_the_original_alone():
    original = block("likes tea")
    edited = replace_text(original, "tea", "coffee")
    assert original.value == "likes tea"
    assert edited is not original
    assert (edited.label, edited.version) == (original.label, original.version)


# --- insert ---------------------------------------------------------------------


def test_insert_at_line_zero_puts_text_at_the_top():
    assert insert(block("b\nc"), "a", 0).value == "a\nb\nc"


def test_insert_at_line_minus_one_appends_at_the_end():
    assert insert(block("a\nb"), "c", -1).value == "a\nb\nc"


def test_insert_defaults_to_the_end():
    assert insert(block("a"), "b").value == "a\nb"


def test_insert_at_a_middle_line_goes_before_that_line():
    assert insert(block("a\nc"), "b", 1).value == "a\nb\nc"


def test_insert_at_line_count_appends_at_the_end():
    assert insert(block("a\nb"), "c", 2).value == "a\nb\nc"


def test_insert_into_an_empty_block_gives_just_the_text():
    assert insert(block(""), "first fact").value == "first fact"
    assert insert(block(""), "first fact", 0).value == "first fact"


def test_insert_refuses_a_line_past_the_end_naming_the_valid_range():
    with pytest.raises(MemoryEditError, match=r"line 5 is out of range.*has 2 lines.*0\.\.2"):
        insert(block("a\nb"), "x", 5)


def test_insert_refuses_negative_lines_other_than_minus_one():
    with pytest.raises(MemoryEditError, match="line -2 is out of range"):
        insert(block("a\nb"), "x", -2)


def test_insert_refuses_empty_text():
    with pytest.raises(MemoryEditError, match="nothing to insert"):
        insert(block("a"), "")


# --- rethink --------------------------------------------------------------------


def test_rethink_replaces_the_whole_value():
    assert rethink(block("old\nnotes"), "fresh summary").value == "fresh summary"


def test_rethink_can_empty_a_block():
    assert rethink(block("old"), "").value == ""


# --- limit and read-only --------------------------------------------------------


def test_edit_over_the_limit_raises_with_size_and_limit():
    original = block("12345", limit=8)
    with pytest.raises(BlockLimitError, match="limit of 8") as caught:
        insert(original, "abcd")
    assert (caught.value.size, caught.value.limit) == (10, 8)
    assert caught.value.label == "human"
    assert original.value == "12345"


def test_every_edit_kind_enforces_the_limit():
    original = block("short", limit=6)
    for edit in (lambda b: replace_text(b, "short", "longer!"), lambda b: rethink(b, "x" * 7)):
        with pytest.raises(BlockLimitError):
            edit(original)
    assert original.value == "short"


def test_an_edit_exactly_at_the_limit_is_accepted():
    assert rethink(block(limit=3), "abc").chars == 3


def test_read_only_block_refuses_every_edit():
    locked = block("fixed", read_only=True)
    edits = [
        lambda: replace_text(locked, "fixed", "x"),
        lambda: insert(locked, "x"),
        lambda: rethink(locked, "x"),
    ]
    for edit in edits:
        with pytest.raises(ReadOnlyBlockError, match="read-only"):
            edit()
    assert locked.value == "fixed"


def test_read_only_error_is_also_a_permission_error():
    with pytest.raises(PermissionError):
        rethink(block(read_only=True), "x")


# --- construction ---------------------------------------------------------------


def test_bad_labels_are_refused():
    for label in ["", "9lives", "has space", "dot.ted", "x" * 65, "new\nline", "persona\n"]:
        with pytest.raises(ConfigurationError, match="invalid block label"):
            MemoryBlock(label=label)


def test_good_labels_are_accepted():
    for label in ["persona", "_private", "learned-context_2", "x" * 64]:
        assert MemoryBlock(label=label).label == label


def test_a_non_positive_limit_is_refused():
    with pytest.raises(ConfigurationError, match="limit must be positive"):
        MemoryBlock(label="human", limit=0)


def test_a_starting_value_over_the_limit_is_refused():
    with pytest.raises(ConfigurationError, match="over its limit"):
        MemoryBlock(label="human", value="toolong", limit=3)


# --- plain-data forms -----------------------------------------------------------


def test_block_round_trips_through_a_dict_including_updated_at():
    original = MemoryBlock(
        label="human",
        value="Name: Ada",
        description="the user",
        limit=100,
        read_only=True,
        version=7,
        updated_at=datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC),
    )
    data = original.to_dict()
    assert data["updated_at"] == "2026-01-02T03:04:05.000678+00:00"
    assert MemoryBlock.from_dict(data) == original


def test_block_without_updated_at_round_trips():
    original = block("x")
    assert original.to_dict()["updated_at"] is None
    assert MemoryBlock.from_dict(original.to_dict()) == original


def test_edits_round_trip_through_dicts():
    edits = [ReplaceEdit("human", "a", "b"), InsertEdit("human", "c", 0), RethinkEdit("human", "d")]
    for edit in edits:
        data = edit_to_dict(edit)
        assert data["kind"] == edit.kind
        assert edit_from_dict(data) == edit


def test_edit_from_dict_refuses_an_unknown_kind():
    with pytest.raises(ValueError, match="unknown edit kind 'delete'"):
        edit_from_dict({"kind": "delete", "label": "human"})


def test_apply_edit_dispatches_on_the_edit_kind():
    original = block("a\nb")
    assert apply_edit(original, ReplaceEdit("human", "b", "B")).value == "a\nB"
    assert apply_edit(original, InsertEdit("human", "z", 0)).value == "z\na\nb"
    assert apply_edit(original, RethinkEdit("human", "new")).value == "new"


def test_apply_edit_raises_the_same_errors_as_the_edit_functions():
    with pytest.raises(MemoryEditError, match="found 0 times"):
        apply_edit(block("a"), ReplaceEdit("human", "zzz", "b"))


# --- validate_declarations ------------------------------------------------------


def test_declarations_with_unique_labels_pass():
    assert validate_declarations(iter([MemoryBlock(label="a"), MemoryBlock(label="b")])) is None


def test_declarations_refuse_a_duplicate_label():
    with pytest.raises(ConfigurationError, match="'a' is declared twice"):
        validate_declarations([MemoryBlock(label="a"), MemoryBlock(label="a", value="x")])


def test_declarations_refuse_an_empty_list():
    with pytest.raises(ConfigurationError, match="at least one memory block"):
        validate_declarations([])


def test_declarations_refuse_things_that_are_not_blocks():
    with pytest.raises(ConfigurationError, match="must be MemoryBlock instances"):
        validate_declarations([{"label": "a"}])


# --- refusals that say what would work ---------------------------------------------


def test_replace_on_an_empty_block_points_to_insert_and_rethink():
    with pytest.raises(MemoryEditError) as caught:
        replace_text(block(""), "Name: Ada", "Name: Ada Lovelace")
    message = str(caught.value)
    assert "is empty" in message
    assert "memory_insert" in message and "memory_rethink" in message


def test_replace_of_missing_text_quotes_the_closest_line():
    value = "Name: Ada\nDiet: vegetarian\nCity: Lisbon"
    with pytest.raises(MemoryEditError) as caught:
        replace_text(block(value), "City: Lisboa, Portugal", "City: Porto")
    assert "the closest line is: 'City: Lisbon'" in str(caught.value)


def test_the_quoted_closest_line_is_cut_when_very_long():
    long_line = "x" * 500
    with pytest.raises(MemoryEditError) as caught:
        replace_text(block(long_line), "y" * 10, "z")
    assert "'" + "x" * 200 + "...'" in str(caught.value)
