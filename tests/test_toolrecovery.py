"""Tool calls written as JSON in the reply text (sleepagent.sleep.toolrecovery)."""

from __future__ import annotations

import json

from langchain_core.messages import AIMessage

from sleepagent.sleep.toolrecovery import find_tool_calls, recover_tool_calls
from sleepagent.sleep.tools import MemoryFinishArgs, MemoryInsertArgs, MemoryRethinkArgs

TOOLS = {
    "memory_rethink": MemoryRethinkArgs,
    "memory_insert": MemoryInsertArgs,
    "memory_finish": MemoryFinishArgs,
}
RETHINK = {"label": "human", "new_value": "Name: Ada"}


def calls(text: str) -> list[tuple[str, dict]]:
    return [(call["name"], call["args"]) for call in find_tool_calls(text, TOOLS).calls]


def test_a_bare_object_with_arguments_is_a_call():
    text = json.dumps({"name": "memory_rethink", "arguments": RETHINK})
    assert calls(text) == [("memory_rethink", RETHINK)]


def test_a_fenced_block_is_a_call_and_the_empty_fence_leaves_the_text():
    call = json.dumps({"name": "memory_rethink", "parameters": RETHINK})
    text = f"I will save it.\n```json\n{call}\n```\nDone."
    recovery = find_tool_calls(text, TOOLS)
    assert [call["name"] for call in recovery.calls] == ["memory_rethink"]
    assert recovery.text == "I will save it.\nDone."


def test_the_openai_function_shape_with_string_arguments_is_a_call():
    text = json.dumps(
        {
            "type": "function",
            "function": {"name": "memory_rethink", "arguments": json.dumps(RETHINK)},
        }
    )
    assert calls(text) == [("memory_rethink", RETHINK)]


def test_the_flat_shape_and_a_call_without_arguments_are_calls():
    flat = json.dumps({"name": "memory_rethink", **RETHINK})
    assert calls(flat) == [("memory_rethink", RETHINK)]
    assert calls('{"name": "memory_finish"}') == [("memory_finish", {})]


def test_several_objects_and_a_list_are_several_calls_in_order():
    insert = {"label": "human", "text": "Diet: vegetarian", "line": -1}
    two = (
        json.dumps({"name": "memory_rethink", "arguments": RETHINK})
        + "\n"
        + json.dumps({"name": "memory_insert", "arguments": insert})
    )
    listed = json.dumps([
        {"name": "memory_insert", "arguments": insert},
        {"name": "memory_finish", "arguments": {}},
    ])  # fmt: skip
    wrapped = json.dumps({"tool_calls": [{"name": "memory_finish", "arguments": {}}]})
    assert calls(two) == [("memory_rethink", RETHINK), ("memory_insert", insert)]
    assert calls(listed) == [("memory_insert", insert), ("memory_finish", {})]
    assert calls(wrapped) == [("memory_finish", {})]


def test_call_ids_are_distinct_and_stable_for_the_same_text():
    text = '{"name": "memory_finish"} {"name": "memory_finish"}'
    first = [call["id"] for call in find_tool_calls(text, TOOLS).calls]
    again = [call["id"] for call in find_tool_calls(text, TOOLS).calls]
    assert first == again and len(set(first)) == 2


def test_invalid_json_stays_text():
    text = '{"name": "memory_rethink", "arguments": {"label": "human", "new_value": "Ada"'
    recovery = find_tool_calls(text, TOOLS)
    assert recovery.calls == () and recovery.text == text


def test_a_tool_that_was_not_offered_stays_text_and_is_reported():
    text = json.dumps(
        {"name": "memory_replace", "arguments": {"label": "h", "old": "a", "new": "b"}}
    )
    recovery = find_tool_calls(text, TOOLS)
    assert recovery.calls == () and recovery.text == text
    assert recovery.rejected[0].name == "memory_replace"
    assert "not an offered tool" in recovery.rejected[0].reason


def test_arguments_that_do_not_fit_the_schema_stay_text():
    missing = json.dumps({"name": "memory_rethink", "arguments": {"label": "human"}})
    extra = json.dumps({"name": "memory_rethink", "arguments": {**RETHINK, "force": True}})
    not_object = json.dumps({"name": "memory_rethink", "arguments": ["human", "Ada"]})
    for text in (missing, extra, not_object):
        assert find_tool_calls(text, TOOLS).calls == (), text


def test_a_list_with_one_bad_call_stays_text_whole():
    text = json.dumps([
        {"name": "memory_rethink", "arguments": RETHINK},
        {"name": "memory_rethink", "arguments": {"label": "human"}},
    ])  # fmt: skip
    assert calls(text) == []


def test_prose_with_braces_and_json_that_is_not_a_call_stay_text():
    prose = "Use {name} in the template; sets like {1, 2} and [a, b] are fine."
    data = 'The config is {"name": "Ada", "city": "Lisbon"} and {"answer": 42}.'
    nested = '{"reply": {"name": "memory_finish"}}'
    for text in (prose, data, nested):
        assert find_tool_calls(text, TOOLS).calls == (), text


def test_recover_fills_the_message_tool_calls_and_keeps_the_prose():
    message = AIMessage('Saving. {"name": "memory_finish", "arguments": {}}', id="m1")
    recovered = recover_tool_calls(message, TOOLS)
    assert [call["name"] for call in recovered.tool_calls] == ["memory_finish"]
    assert (recovered.content, recovered.id) == ("Saving.", "m1")


def test_recover_leaves_a_message_with_its_own_tool_calls_alone():
    message = AIMessage(
        '{"name": "memory_finish"}',
        tool_calls=[{"name": "memory_rethink", "args": RETHINK, "id": "c1", "type": "tool_call"}],
    )
    assert recover_tool_calls(message, TOOLS) is message


def test_recover_without_offered_tools_or_calls_returns_the_message_itself():
    message = AIMessage('{"name": "memory_finish"}')
    assert recover_tool_calls(message, {}) is message
    plain = AIMessage("Hello Ada!")
    assert recover_tool_calls(plain, TOOLS) is plain
