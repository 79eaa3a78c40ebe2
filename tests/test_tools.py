"""Memory tool schemas and tool-call handling (sleepagent.sleep.tools)."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import AIMessage, ToolMessage

from sleepagent.errors import BlockLimitError
from sleepagent.memory.blocks import MemoryBlock, insert
from sleepagent.memory.staging import StagedMemory
from sleepagent.sleep.tools import memory_tool_schemas, run_tool_calls
from sleepagent.testing import ai_tool_calls, tool_call

EDIT_TOOLS = ["memory_replace", "memory_insert", "memory_rethink"]


def memory() -> StagedMemory:
    return StagedMemory.of(
        [
            MemoryBlock(label="human", value="Name: Ada", limit=30),
            MemoryBlock(label="rules", value="Be kind.", read_only=True),
        ]
    )


def assert_refused(message: AIMessage) -> ToolMessage:
    """Run one call that must fail, and check it left the working copy alone."""
    before = memory()
    outcome = run_tool_calls(before, message)
    (reply,) = outcome.replies
    assert reply.status == "error"
    assert outcome.staged == before
    assert outcome.accepted == 0
    return reply


# --- schemas --------------------------------------------------------------------


def test_schemas_are_named_for_the_four_memory_tools():
    names = [schema["function"]["name"] for schema in memory_tool_schemas()]
    assert names == [*EDIT_TOOLS, "memory_finish"]


def test_schemas_without_finish_leave_out_memory_finish():
    names = [schema["function"]["name"] for schema in memory_tool_schemas(finish=False)]
    assert names == EDIT_TOOLS


def test_schemas_are_openai_function_tools():
    for schema in memory_tool_schemas():
        assert schema["type"] == "function"
        function = schema["function"]
        assert set(function) == {"name", "description", "parameters"}
        assert function["description"]
        parameters = function["parameters"]
        assert parameters["type"] == "object"
        assert parameters["additionalProperties"] is False
        assert set(parameters.get("required", [])) <= set(parameters["properties"])
        assert "title" not in parameters
        assert all("title" not in prop for prop in parameters["properties"].values())
        assert json.loads(json.dumps(schema)) == schema


def test_schemas_require_the_arguments_each_tool_needs():
    required = {
        schema["function"]["name"]: schema["function"]["parameters"].get("required", [])
        for schema in memory_tool_schemas()
    }
    assert required == {
        "memory_replace": ["label", "old", "new"],
        "memory_insert": ["label", "text"],
        "memory_rethink": ["label", "new_value"],
        "memory_finish": [],
    }


def test_schemas_have_no_scope_argument():
    for schema in memory_tool_schemas():
        properties = schema["function"]["parameters"]["properties"]
        assert not {"user_id", "thread_id", "scope"} & set(properties)


# --- applying calls -------------------------------------------------------------


def test_a_replace_call_edits_the_staged_copy_and_replies_ok():
    call = tool_call("memory_replace", label="human", old="Ada", new="Grace")
    outcome = run_tool_calls(memory(), ai_tool_calls(call))
    assert outcome.staged.block("human").value == "Name: Grace"
    assert outcome.accepted == 1
    (reply,) = outcome.replies
    assert reply.status == "success"
    assert reply.content == "OK: block 'human' now holds 11/30 characters."
    assert reply.name == "memory_replace"


def test_several_calls_in_one_message_are_applied_in_order():
    message = ai_tool_calls(
        tool_call("memory_insert", label="human", text="City: Paris"),
        tool_call("memory_replace", label="human", old="Paris", new="Oslo"),
        tool_call("memory_insert", label="human", text="Hi", line=0),
    )
    outcome = run_tool_calls(memory(), message)
    assert outcome.staged.block("human").value == "Hi\nName: Ada\nCity: Oslo"
    assert outcome.accepted == 3
    assert [reply.status for reply in outcome.replies] == ["success"] * 3


def test_an_edit_already_made_in_the_run_is_refused_and_ends_the_page():
    insert_city = tool_call("memory_insert", label="human", text="City: Oslo")
    first = run_tool_calls(memory(), ai_tool_calls(insert_city))
    again = run_tool_calls(first.staged, ai_tool_calls(insert_city))
    assert again.staged.block("human").value == "Name: Ada\nCity: Oslo"
    (reply,) = again.replies
    assert reply.status == "error" and "already made" in str(reply.content)
    assert (again.accepted, again.refused, again.finished) == (0, 1, True)


def test_a_rethink_call_rewrites_the_block():
    call = tool_call("memory_rethink", label="human", new_value="Ada, chemist")
    assert run_tool_calls(memory(), ai_tool_calls(call)).staged.block("human").value == (
        "Ada, chemist"
    )


def test_memory_finish_sets_finished():
    outcome = run_tool_calls(memory(), ai_tool_calls(tool_call("memory_finish")))
    assert outcome.finished is True
    assert outcome.accepted == 0
    assert outcome.replies[0].content == "Memory editing finished."


def test_a_round_without_finish_is_not_finished():
    call = tool_call("memory_insert", label="human", text="x")
    assert run_tool_calls(memory(), ai_tool_calls(call)).finished is False


def test_a_message_without_tool_calls_changes_nothing():
    before = memory()
    outcome = run_tool_calls(before, AIMessage(content="All done."))
    assert (outcome.staged, outcome.replies, outcome.finished) == (before, (), False)


# --- malformed calls ------------------------------------------------------------


def test_invalid_json_arguments_get_an_error_reply():
    message = AIMessage(
        content="",
        invalid_tool_calls=[
            {
                "name": "memory_replace",
                "args": "{not json",
                "id": "c1",
                "error": "bad",
                "type": "invalid_tool_call",
            }
        ],
    )
    reply = assert_refused(message)
    assert reply.tool_call_id == "c1"
    assert reply.name == "memory_replace"
    assert "not valid JSON" in reply.content
    assert "bad" in reply.content


def test_an_extra_scope_argument_is_refused():
    call = tool_call("memory_replace", label="human", old="Ada", new="Eve", user_id="eve")
    reply = assert_refused(ai_tool_calls(call))
    assert "invalid arguments for memory_replace" in reply.content
    assert "user_id" in reply.content


def test_a_missing_argument_is_refused_naming_it():
    reply = assert_refused(ai_tool_calls(tool_call("memory_replace", label="human", old="Ada")))
    assert "new: Field required" in reply.content


def test_a_wrongly_typed_argument_is_refused_naming_it():
    call = tool_call("memory_insert", label="human", text="x", line="top")
    reply = assert_refused(ai_tool_calls(call))
    assert "line:" in reply.content
    assert "integer" in reply.content


def test_finish_with_arguments_is_refused_and_does_not_finish():
    outcome = run_tool_calls(memory(), ai_tool_calls(tool_call("memory_finish", reason="done")))
    assert outcome.finished is False
    assert outcome.replies[0].status == "error"
    assert "reason" in outcome.replies[0].content


def test_an_unknown_tool_is_refused_listing_the_tools():
    reply = assert_refused(ai_tool_calls(tool_call("delete_everything", label="human")))
    assert "unknown tool 'delete_everything'" in reply.content
    assert "memory_replace, memory_insert, memory_rethink, memory_finish" in reply.content


# --- refused edits --------------------------------------------------------------


def test_an_edit_over_the_limit_replies_with_the_model_facing_message():
    call = tool_call("memory_insert", label="human", text="x" * 30)
    reply = assert_refused(ai_tool_calls(call))
    with pytest.raises(BlockLimitError) as refused:
        insert(memory().block("human"), "x" * 30)
    assert reply.content == str(refused.value)


def test_an_edit_of_a_read_only_block_is_refused():
    call = tool_call("memory_rethink", label="rules", new_value="Be mean.")
    reply = assert_refused(ai_tool_calls(call))
    assert reply.content.startswith("Edit refused: block 'rules' is read-only.")
    assert reply.content.endswith("Writable blocks: human.")


def test_a_replace_that_matches_nothing_is_refused():
    call = tool_call("memory_replace", label="human", old="Grace", new="Eve")
    reply = assert_refused(ai_tool_calls(call))
    assert "found 0 times in block 'human'" in reply.content


def test_an_edit_of_an_unknown_block_is_refused_listing_the_blocks():
    call = tool_call("memory_rethink", label="secrets", new_value="x")
    reply = assert_refused(ai_tool_calls(call))
    assert "no block 'secrets'. The blocks are: 'human', 'rules'." in reply.content


def test_a_refused_call_does_not_stop_the_calls_after_it():
    message = ai_tool_calls(
        tool_call("memory_replace", label="human", old="Grace", new="Eve"),
        tool_call("memory_insert", label="human", text="City: Oslo"),
    )
    outcome = run_tool_calls(memory(), message)
    assert [reply.status for reply in outcome.replies] == ["error", "success"]
    assert outcome.staged.block("human").value == "Name: Ada\nCity: Oslo"
    assert outcome.accepted == 1


# --- replies and restrictions ---------------------------------------------------


def test_every_call_gets_exactly_one_reply_with_its_id():
    calls = [
        tool_call("memory_insert", label="human", text="ok"),
        tool_call("memory_replace", label="human", old="missing", new="x"),
        tool_call("nope"),
        tool_call("memory_rethink", label="human"),
        tool_call("memory_finish"),
    ]
    message = AIMessage(
        content="",
        tool_calls=calls,
        invalid_tool_calls=[
            {
                "name": "memory_insert",
                "args": "{",
                "id": "bad1",
                "error": None,
                "type": "invalid_tool_call",
            }
        ],
    )
    replies = run_tool_calls(memory(), message).replies
    expected_ids = sorted([call["id"] for call in calls] + ["bad1"])
    assert sorted(reply.tool_call_id for reply in replies) == expected_ids
    assert all(isinstance(reply, ToolMessage) for reply in replies)


def test_allowed_restricts_the_tools_that_may_run():
    message = ai_tool_calls(
        tool_call("memory_rethink", label="human", new_value="x"),
        tool_call("memory_insert", label="human", text="City: Oslo"),
    )
    outcome = run_tool_calls(memory(), message, allowed=["memory_insert"])
    assert [reply.status for reply in outcome.replies] == ["error", "success"]
    assert "unknown tool 'memory_rethink'. Use one of: memory_insert." in outcome.replies[0].content
    assert outcome.staged.block("human").value == "Name: Ada\nCity: Oslo"


def test_finish_is_refused_when_not_allowed():
    outcome = run_tool_calls(
        memory(), ai_tool_calls(tool_call("memory_finish")), allowed=EDIT_TOOLS
    )
    assert outcome.finished is False
    assert outcome.replies[0].status == "error"
