"""The seeded draw across templates and its record in the run folder."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from sleepagent.bench.datasets import load_files
from sleepagent.bench.sampling import SAMPLE_FILE, SampleRecord, describe, draw, resume_sample
from sleepagent.errors import ConfigurationError
from tests.test_bench_fixtures import aime_rows, gsm_rows, write_jsonl


@pytest.fixture
def p2(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "stateful_gsm_symbolic_p2.jsonl", gsm_rows(3, 4))


def test_a_draw_takes_every_template_before_a_second_instance_of_any(p2: Path) -> None:
    examples = load_files("gsm-symbolic", [p2])
    drawn = draw(examples, 5, seed=1)
    templates = [e.template for e in drawn]
    assert sorted(templates[:3]) == ["0", "1", "2"]
    assert len(set(templates[3:])) == 2
    assert len({e.id for e in drawn}) == 5


def test_a_draw_is_the_same_for_the_same_seed_and_differs_for_another(p2: Path) -> None:
    examples = load_files("gsm-symbolic", [p2])
    ids = [[e.id for e in draw(examples, 6, seed=seed)] for seed in (0, 0, 1, 2, 3)]
    assert ids[0] == ids[1]
    assert any(other != ids[0] for other in ids[2:])


def test_a_draw_of_all_or_more_gives_each_example_once_and_draws_are_prefixes(p2: Path) -> None:
    examples = load_files("gsm-symbolic", [p2])
    everything = draw(examples, 99, seed=4)
    assert sorted(e.id for e in everything) == sorted(e.id for e in examples)
    assert all(draw(examples, k, seed=4) == everything[:k] for k in range(len(examples)))


def request(keys: list[str], **changes: object) -> SampleRecord:
    record = SampleRecord(
        dataset="gsm-symbolic", files=("p2.jsonl",), n=3, seed=0, level=None, keys=tuple(keys)
    )
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


def test_a_recorded_sample_is_resumed_whatever_the_draw_gives_now(p2: Path, tmp_path: Path) -> None:
    examples = load_files("gsm-symbolic", [p2])
    out = tmp_path / "run"
    first, resumed = resume_sample(out, request([e.id for e in examples[:3]]), examples)
    assert not resumed and (out / SAMPLE_FILE).exists()
    assert first == examples[:3]
    # Same request, but today's draw would pick others: the recorded keys win.
    again, resumed = resume_sample(out, request([e.id for e in examples[5:8]]), examples)
    assert resumed and again == first


def test_a_folder_with_another_sample_is_refused(p2: Path, tmp_path: Path) -> None:
    examples = load_files("gsm-symbolic", [p2])
    resume_sample(tmp_path, request([examples[0].id], n=1), examples)
    with pytest.raises(ConfigurationError, match=r"different sample.*seed=0.*seed=1.*new --out"):
        resume_sample(tmp_path, request([], seed=1), examples)
    with pytest.raises(ConfigurationError, match=r"different sample.*n=1.*n=4"):
        resume_sample(tmp_path, request([examples[5].id], n=4), examples)
    with pytest.raises(ConfigurationError, match="no longer has"):
        resume_sample(tmp_path, request([examples[0].id], n=1), examples[1:])


def test_the_description_names_sources_templates_and_missing_contexts(tmp_path: Path) -> None:
    aime = load_files("aime", [write_jsonl(tmp_path / "aime.jsonl", aime_rows())])
    text = describe(aime, resumed=False)
    assert text.startswith("drew 3 examples (aime-2024: 3 from 3 templates, 1 without context)")
    assert "2024-II-3" in text


def test_a_larger_n_on_the_same_seed_grows_the_recorded_sample(p2: Path, tmp_path: Path) -> None:
    examples = load_files("gsm-symbolic", [p2])
    small = [e.id for e in draw(examples, 3, seed=0)]
    large = [e.id for e in draw(examples, 6, seed=0)]
    resume_sample(tmp_path, request(small), examples)
    grown, resumed = resume_sample(tmp_path, request(large, n=6), examples)
    assert resumed and [e.id for e in grown] == large
    # Asking for fewer again keeps the larger recorded sample.
    again, _ = resume_sample(tmp_path, request(small), examples)
    assert [e.id for e in again] == large
