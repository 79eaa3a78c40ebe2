"""LoCoMo end to end, offline: ``sleepagent bench --dataset locomo`` on the invented fixture.

A real ChatOpenAI talks to the loopback server, which answers like a model would: the
sleep-time agent writes the messages of a session that some question needs (small talk
left out), with their speaker and date, into ``learned_context``; a question is answered
right when its evidence turn is in what the model was shown (its memory or the
conversation), and otherwise declined; an adversarial question whose evidence is shown
gets the trap answer; the judge calls an answer CORRECT when it matches the gold.
"""

from __future__ import annotations

import html
import itertools
import json
import re
from pathlib import Path

import pytest

from sleepagent.bench.__main__ import main
from sleepagent.bench.conversation_runner import matched_turns
from sleepagent.bench.conversations import load_locomo
from sleepagent.bench.plots import CONVERSATION_PLOT_FILES
from sleepagent.testing import Completion, LoopbackOpenAI, RecordedRequest, wire_call

FIXTURE = Path(__file__).parent / "data" / "locomo_mini.json"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DECLINE = "Not mentioned in the conversation"
SLEEP_PROMPT_TOKENS, SLEEP_COMPLETION_TOKENS = 400, 50

CONVERSATIONS = load_locomo(FIXTURE)
QUESTIONS = {q.text: q for c in CONVERSATIONS for q in c.questions}
SAID = {(c.id, t.dia_id): t.text for c in CONVERSATIONS for t in c.turns}
EVIDENCE = {SAID[(q.conversation, e)] for q in QUESTIONS.values() for e in q.evidence}


def _text(request: RecordedRequest, role: str) -> str:
    return "\n".join(str(m.get("content") or "") for m in request.messages if m["role"] == role)


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _sleep(request: RecordedRequest) -> Completion:
    prompt = html.unescape(_text(request, "user"))
    learned = re.search(
        r'<block label="learned_context"[^>]*>.*?<value>\n(.*?)\n</value>', prompt, re.S
    )
    lines = [learned.group(1)] if learned and learned.group(1).strip() else []
    for speaker, said_at, text in re.findall(
        r'<message n="\d+" role="user" speaker="([^"]*)" said_at="([^"]*)">(.*?)</message>',
        prompt,
        re.S,
    ):
        # Consolidates: keeps what some question needs, drops the small talk.
        if any(text.startswith(evidence) for evidence in EVIDENCE):
            lines.append(f"{speaker} ({said_at}): {text}")
    edit = wire_call("memory_rethink", label="learned_context", new_value="\n".join(lines))
    return Completion.calling(
        edit,
        wire_call("memory_finish"),
        prompt_tokens=SLEEP_PROMPT_TOKENS,
        completion_tokens=SLEEP_COMPLETION_TOKENS,
    )


def _answer(request: RecordedRequest) -> Completion:
    user, system = _text(request, "user"), html.unescape(_text(request, "system"))
    question = next(q for text, q in QUESTIONS.items() if text in user)
    seen = user + system
    shown = all(SAID[(question.conversation, e)] in seen for e in question.evidence)
    if not shown:
        reply = DECLINE
    elif question.answer is None:
        reply = str(question.adversarial_answer)  # fooled: what is true of the other speaker
    else:
        reply = question.answer.split(";")[0]  # a short answer: LoCoMo grades the part before ;
    return Completion(reply, prompt_tokens=_tokens(user + system), completion_tokens=_tokens(reply))


def _judge(request: RecordedRequest) -> Completion:
    prompt = _text(request, "user")
    gold = re.search(r"Gold answer: (.*)", prompt).group(1)
    answer = re.search(r"Answer to grade: (.*)", prompt).group(1)
    if gold.startswith("Not mentioned"):
        right = "not mentioned" in answer.lower()
    else:
        right = gold.lower() in answer.lower() or answer.lower() in gold.lower()
    return Completion("CORRECT" if right else "WRONG", prompt_tokens=90, completion_tokens=1)


def respond(request: RecordedRequest) -> Completion:
    if request.tools:
        return _sleep(request)
    if _text(request, "user").startswith("You grade an answer"):
        return _judge(request)
    return _answer(request)


def _bench(server: LoopbackOpenAI, out: Path, *extra: str) -> int:
    return main(
        [
            "--dataset",
            "locomo",
            "--data",
            str(FIXTURE),
            "--per-category",
            "3",
            "--model",
            "openai:loopback",
            "--base-url",
            server.base_url,
            "--retries",
            "0",
            "--no-progress",
            # The scripted sleep model answers the edit round, keeping each message
            # the questions need word for word (a fact pass would restate it).
            "--user-facts",
            "edit",
            "--out",
            str(out),
            *extra,
        ]
    )


def _rows(summary: str, heading: str) -> dict[str, list[str]]:
    """The table under ``heading``, as cells by the row's first cell."""
    part = summary[summary.index(heading) :]
    table = part[part.index("\n|") + 1 :]
    rows: dict[str, list[str]] = {}
    for line in table.splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    return rows


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, list[RecordedRequest], str]:
    """One fixture run with a judge, done once: the folder, the requests, and stderr."""
    out = tmp_path_factory.mktemp("locomo") / "run"
    with LoopbackOpenAI([respond] * 200) as server:
        code = _bench(server, out, "--judge-model", "openai:loopback")
        requests = server.requests
        assert not server.unexpected
    assert code == 0
    return out, requests, ""


def test_a_run_writes_every_artifact_of_the_folder(run) -> None:
    out, requests, _ = run
    for name in ("results.jsonl", "summary.md", "run.json", "sample.json", "prompts.json"):
        assert (out / name).exists(), name
    for name in CONVERSATION_PLOT_FILES:
        assert (out / name).read_bytes().startswith(PNG_SIGNATURE), name
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    kinds = {kind: sum(r["kind"] == kind for r in records) for kind in ("ingest", "qa", "judge")}
    # 3 + 2 sessions; 12 questions (all but 3 categories x 3) under 6 systems, each judged.
    assert kinds == {"ingest": 5, "qa": 72, "judge": 72}
    assert len(requests) == 5 + 72 + 72
    prompts = json.loads((out / "prompts.json").read_text())
    assert "CORRECT or WRONG" in prompts["judge"]
    info = json.loads((out / "run.json").read_text())
    assert info["grading"] == "locomo-f1"
    assert info["sessions"][-1]["judge_model"] == "openai:loopback"


def test_sessions_are_imported_in_order_with_their_dates_speakers_and_image_captions(run) -> None:
    _, requests, _ = run
    sleeps = [_text(r, "user") for r in requests if r.tools]
    first = next(text for text in sleeps if "adopted a cat" in text)
    assert 'speaker="Ines" said_at="10:15 am on 3 March, 2024"' in first
    assert "Her name is Pepper. Look at her! [shares a photo of a grey cat sleeping on a sofa]" in (
        first
    )
    third = next(text for text in sleeps if "Lisbon half marathon in 1 hour" in text)
    assert "Her name is Pepper" in third, "session 3 starts from the memory sessions 1-2 left"


def test_the_summary_ranks_the_systems_by_what_they_were_shown(run) -> None:
    out, _, _ = run
    summary = (out / "summary.md").read_text()
    f1 = _rows(summary, "## LoCoMo F1 by category")
    # overall (1-4) is the 5th cell; then declined, gave the trap.
    assert f1["no_memory"][4:7] == ["0.0", "100.0", "0.0"]
    assert f1["full_context"][4:7] == ["100.0", "0.0", "100.0"]
    assert f1["sleep_memory"][4:7] == ["100.0", "0.0", "100.0"]
    assert 0.0 < float(f1["recent_turns"][4]) < 100.0, "a window of the last turns misses some"
    assert float(f1["recall"][4]) > 0.0, "recall alone finds some evidence by its words"
    assert f1["sleep_memory_recall"][4:7] == ["100.0", "0.0", "100.0"]
    judge = _rows(summary, "## LLM judge")
    assert judge["full_context"][4] == "100.0" and judge["no_memory"][4] == "0.0"
    assert judge["no_memory"][5] == "100.0", "declining an adversarial question is correct"


def test_tokens_per_query_and_the_cost_of_building_memory_are_reported(run) -> None:
    out, _, _ = run
    summary = (out / "summary.md").read_text()
    cost = _rows(summary, "## Tokens per query")
    total = {system: float(cells[2].replace(",", "")) for system, cells in cost.items()}
    assert total["no_memory"] < total["sleep_memory"] < total["full_context"]
    assert total["no_memory"] < total["recall"]
    assert total["sleep_memory"] < total["sleep_memory_recall"], "recall adds its messages"
    assert cost["sleep_memory_recall"][5] == f"{SLEEP_PROMPT_TOKENS + SLEEP_COMPLETION_TOKENS:.1f}"
    per_session = SLEEP_PROMPT_TOKENS + SLEEP_COMPLETION_TOKENS
    assert cost["sleep_memory"][5] == f"{per_session:.1f}"
    memory = _rows(summary, "## Memory built, per conversation")
    assert memory["mini-1"][:2] == ["3", "12"] and memory["mini-2"][:2] == ["2", "6"]
    assert memory["mini-1"][-1] == "edited 3"
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    windows = {r["recent_turns"] for r in records if r["kind"] == "qa" and "recent_turns" in r}
    assert all(1 <= n < 12 for n in windows), "the window is matched to the memory's size"


def test_recall_systems_show_matching_messages_with_speaker_and_session_date(run) -> None:
    out, requests, _ = run
    systems = [
        _text(r, "system") for r in requests if not r.tools and "grade" not in _text(r, "user")
    ]
    recalled = [text for text in systems if "<recalled_messages>" in text]
    assert recalled, "recall systems put a section in the system prompt"
    assert any('time="10:15 am on 3 March, 2024"' in text for text in recalled)
    with_blocks = [text for text in recalled if "Pepper" in text.partition("<recalled")[0]]
    assert with_blocks, "sleep_memory_recall shows the memory blocks as well"
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    answers = [r for r in records if r["kind"] == "qa" and r["system"].endswith("recall")]
    assert len(answers) == 24 and {r["recall_messages"] for r in answers} == {10}


def test_a_second_run_resumes_without_a_request_and_report_only_reproduces_the_summary(
    run,
) -> None:
    out, _, _ = run
    tables = _rows((out / "summary.md").read_text(), "## LoCoMo F1 by category")
    with LoopbackOpenAI() as server:
        assert _bench(server, out, "--judge-model", "openai:loopback") == 0
        assert server.requests == []
    resumed = (out / "summary.md").read_text()
    assert _rows(resumed, "## LoCoMo F1 by category") == tables
    assert main(["--report-only", "--out", str(out)]) == 0
    assert (out / "summary.md").read_text() == resumed


def test_full_context_over_the_window_is_not_asked_and_says_why(tmp_path) -> None:
    out = tmp_path / "run"
    with LoopbackOpenAI([respond] * 100) as server:
        code = _bench(
            server,
            out,
            "--systems",
            "no_memory,full_context",
            "--context-window",
            "1000",
            "--per-category",
            "1",
        )
        asked = [_text(r, "user") for r in server.requests]
    assert code == 0
    assert not any("session by session" in text for text in asked)
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    skipped = [r for r in records if r["kind"] == "qa" and r["system"] == "full_context"]
    assert skipped and all("over the model's window of 1,000" in r["skipped"] for r in skipped)
    assert not any(r["kind"] == "ingest" for r in records), "no system needed memory"
    f1 = _rows((out / "summary.md").read_text(), "## LoCoMo F1 by category")
    assert f1["full_context"][-2:] == ["0", str(len(skipped))]


def test_one_conversation_is_chosen_by_its_id_and_only_it_is_ingested_and_asked(
    tmp_path, capsys
) -> None:
    out = tmp_path / "run"
    with LoopbackOpenAI([respond] * 100) as server:
        code = _bench(server, out, "--systems", "sleep_memory", "--conversation", "mini-2")
        asked = [_text(r, "user") for r in server.requests]
    assert code == 0
    theirs = {q.text for q in CONVERSATIONS[1].questions}
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {r["conversation"] for r in records if r["kind"] == "ingest"} == {"mini-2"}
    assert {r["question"] for r in records if r["kind"] == "qa"} <= theirs
    mini_1_said = [t.text for t in CONVERSATIONS[0].turns]
    assert not any(text in prompt for text in mini_1_said for prompt in asked)
    assert json.loads((out / "sample.json").read_text())["conversation_ids"] == ["mini-2"]
    capsys.readouterr()
    assert main(["--report-only", "--out", str(out)]) == 0
    with LoopbackOpenAI([]) as server:
        assert _bench(server, out, "--conversation", "mini-1") == 2
    assert "records a different sample" in capsys.readouterr().err


def _fact_pass(request: RecordedRequest) -> Completion:
    """The fact pass: each quoted message's first sentence, as a fact under its speaker's name."""
    prompt = html.unescape(_text(request, "user"))
    quoted = prompt.split('"""')[1]
    facts = []
    for found in re.finditer(r"^(?P<speaker>[A-Z]\w+) [^\n]*?\d{4}: (?P<said>.+)$", quoted, re.M):
        first = re.split(r"(?<=[.!?]) ", found.group("said"))[0]
        fact = re.sub(r"\bI\b", "they", first)
        facts.append(f"- {found.group('speaker')}: {fact}")
    return Completion("\n".join(facts), prompt_tokens=200, completion_tokens=40)


def _facts_or_answer(request: RecordedRequest) -> Completion:
    if request.tools:  # the edit round: not expected, as every pass is read
        return Completion.calling(wire_call("memory_finish"))
    asked = _text(request, "user")
    return _fact_pass(request) if "List what each person said" in asked else _answer(request)


def test_with_the_archive_a_full_facts_block_carries_its_oldest_lines_session_to_session(
    tmp_path,
) -> None:
    out = tmp_path / "run"
    with LoopbackOpenAI([_facts_or_answer] * 200) as server:
        code = main(
            [
                "--dataset", "locomo", "--data", str(FIXTURE), "--conversation", "mini-1",
                "--per-category", "3", "--model", "openai:loopback",
                "--base-url", server.base_url, "--retries", "0", "--no-progress",
                "--systems", "sleep_memory,recent_turns", "--block-limit", "300",
                "--archive-facts", "5", "--recall-chars", "500", "--out", str(out),
            ]
        )  # fmt: skip
        requests = server.requests
        assert not server.unexpected
    assert code == 0
    assert not any(r.tools for r in requests), "every session concluded by its fact pass"
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    ingests = sorted((r for r in records if r["kind"] == "ingest"), key=lambda r: r["session"])
    assert all(len(r["memory"]["human"]) <= 300 for r in ingests)
    archives = [r["archive"] for r in ingests]
    assert archives[-1], "the block filled and moved lines out"
    for earlier, later in itertools.pairwise(archives):
        assert later[: len(earlier)] == earlier, "each session keeps what the one before archived"
    # No line of the block is lost: each one is still in it, or archived.
    final = set(ingests[-1]["memory"]["human"].splitlines()) | set(archives[-1])
    for record in ingests:
        assert set(record["memory"]["human"].splitlines()) <= final
    # A question sharing words with an archived fact is shown it; the recency window
    # matches the blocks and the archived characters a question may be shown.
    shown = [
        html.unescape(_text(r, "system"))
        for r in requests
        if "<archived_facts>" in (html.unescape(_text(r, "system")))
    ]
    assert shown and all(
        any(f"<fact>{line}</fact>" in prompt for line in archives[-1]) for prompt in shown
    )
    windows = {r["recent_turns"] for r in records if r.get("system") == "recent_turns"}
    mini_1 = next(c for c in CONVERSATIONS if c.id == "mini-1")
    assert windows == {matched_turns(mini_1.turns, ingests[-1]["memory_chars"] + 500)}
    summary = (out / "summary.md").read_text()
    lines, chars = len(archives[-1]), sum(len(line) for line in archives[-1])
    assert f"| {lines:,} ({chars:,}) |" in summary
