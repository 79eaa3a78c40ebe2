"""The store layout's one id codec, and every reader listing scopes through it."""

from __future__ import annotations

import itertools

import pytest
from langgraph.store.memory import InMemoryStore

from sleepagent import Scope
from sleepagent.inspector.reader import InspectorReader
from sleepagent.store import layout
from sleepagent.store.catalog import Catalog
from sleepagent.store.layout import decode_id, encode_id, scope_namespace, scope_of

HOSTILE_IDS = [
    "plain",
    "a/b",
    "/",
    "../..",
    ".",
    "..",
    "ada.l",
    "%",
    "%%",
    "100%",
    "%2E",
    "%2e",
    "%25",
    "%252E",
    "%00",
    "x\x00y",
    "a:b",
    " ",
    "\t",
    "0",
    "#labels",
    "é",
    "日本語.テスト",
    "🙂.🙃%",
    "\u200b",
    "x" * 10_000,
    "%." * 2_000,
]
"""Ids a caller may pass: separators, every escape and its look-alikes, unicode, blanks, long."""

STORED_IDS = [text for text in HOSTILE_IDS if "\x00" not in text and len(text) <= 1_000]
"""The hostile ids every backend stores (no NUL; PostgreSQL indexes keys of bounded size)."""


# --- the codec, pure ------------------------------------------------------------------


@pytest.mark.parametrize("text", HOSTILE_IDS)
def test_decoding_an_encoded_id_gives_the_id_back(text):
    assert decode_id(encode_id(text)) == text


@pytest.mark.parametrize("text", HOSTILE_IDS)
def test_an_encoded_id_is_a_label_any_store_accepts(text):
    label = encode_id(text)
    assert "." not in label and "\x00" not in label
    assert label or not text


def test_every_short_id_over_the_escape_alphabet_round_trips_and_labels_never_collide():
    alphabet = "%.25E0a\x00"
    ids = ["".join(chars) for n in range(5) for chars in itertools.product(alphabet, repeat=n)]
    labels = {encode_id(text): text for text in ids}
    assert len(labels) == len(ids), "two ids share a label"
    assert all(decode_id(label) == text for label, text in labels.items())


def test_every_label_the_decoder_accepts_is_the_encoding_of_what_it_decodes_to():
    alphabet = "%.25E0ea"
    for n in range(6):
        for chars in itertools.product(alphabet, repeat=n):
            label = "".join(chars)
            try:
                text = decode_id(label)
            except ValueError:
                continue
            assert encode_id(text) == label, f"{label!r} decodes to {text!r}"


def test_the_encoding_stored_in_existing_databases_is_unchanged():
    assert encode_id("ada.l") == "ada%2El"
    assert encode_id("100%") == "100%25"
    assert encode_id("%2E") == "%252E"
    assert encode_id("x\x00y") == "x%00y"
    assert encode_id("a/b é 🙂") == "a/b é 🙂"


@pytest.mark.parametrize("label", ["%", "%2", "%2e", "%41", "%%25", "a.b", "x\x00y", "%2%25"])
def test_a_label_the_encoder_never_writes_is_refused(label):
    with pytest.raises(ValueError, match="not a namespace label sleepagent encoded"):
        decode_id(label)


@pytest.mark.parametrize("text", HOSTILE_IDS)
@pytest.mark.parametrize("kind", ["user", "thread"])
def test_a_scope_namespace_names_its_scope_back(kind, text):
    scope = Scope(kind, text)
    assert scope_of(scope_namespace(scope)) == scope
    assert scope_of((*scope_namespace(scope), "history", "human")) == scope


@pytest.mark.parametrize(
    "namespace",
    [
        ("sleepagent", "scopes", "user"),
        ("sleepagent", "scopes", "team", "ada"),
        ("sleepagent", "scopes", "user", "a%41"),
        ("sleepagent", "threads", "t1"),
        ("sleepagent", "logs", "t1"),
        ("other", "scopes", "user", "ada"),
    ],
)
def test_a_namespace_that_is_no_scopes_names_none(namespace):
    assert scope_of(namespace) is None


# --- every reader lists scopes through the codec ----------------------------------------


def test_hostile_scope_ids_come_back_from_the_catalog_and_the_inspector_as_written(make_agent):
    agent, *_ = make_agent(["hi"] * len(STORED_IDS))
    for text in STORED_IDS:
        agent.write_memory("human", f"about {text[:20]}", thread_id="w", user_id=text)
        agent.chat("hello", thread_id=text)  # a thread scope, known from its log and its id
    users = {Scope("user", text) for text in STORED_IDS}
    threads = {Scope("thread", text) for text in STORED_IDS}
    store = agent.agent.blocks.store
    catalog = Catalog(store)
    if agent.loop is None:
        listed, summaries = catalog.known_scopes(), catalog.scopes()
    else:
        listed = agent.loop.run_until_complete(catalog.aknown_scopes())
        summaries = agent.loop.run_until_complete(catalog.ascopes())
        overview = agent.loop.run_until_complete(InspectorReader(store).overview())
        assert {row.key for row in overview.scopes} == {s.key for s in users | threads}
    assert set(listed) == users | threads
    assert {summary.scope for summary in summaries} == users | threads
    assert {s.scope for s in summaries if s.labels == ("human",)} == users


def test_a_namespace_sleepagent_did_not_write_is_listed_as_no_scope():
    store = InMemoryStore()
    store.put((*scope_namespace(Scope("user", "ada")), "blocks"), "k", {"v": 1})
    store.put(("sleepagent", "scopes", "user", "a%41", "blocks"), "k", {"v": 1})
    store.put(("sleepagent", "scopes", "team", "ada", "blocks"), "k", {"v": 1})
    assert Catalog(store).known_scopes() == [Scope("user", "ada")]


def test_scopes_past_one_listing_page_are_all_found():
    store = InMemoryStore()
    scopes = [Scope("user", f"u.{n:04d}") for n in range(layout.SCOPE_LIST_PAGE * 2 + 1)]
    for scope in scopes:
        store.put((*scope_namespace(scope), "blocks"), "k", {"v": 1})
    assert Catalog(store).known_scopes() == scopes
