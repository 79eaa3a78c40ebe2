"""Relative times in facts, dated from the day the message was said."""

from __future__ import annotations

from datetime import date

import pytest

from sleepagent.memory.transcript import LogEntry
from sleepagent.sleep.dating import anchor_times, date_of_line, said_on
from sleepagent.sleep.facts import dated_facts

MAY_8 = date(2023, 5, 8)  # a Monday


@pytest.mark.parametrize(
    ("said", "dated"),
    [
        ("I went hiking yesterday.", "I went hiking on 7 May 2023."),
        ("Yesterday I went hiking.", "On 7 May 2023 I went hiking."),
        ("I ran a race last Saturday.", "I ran a race the Saturday before 8 May 2023."),
        ("I adopted a dog last week.", "I adopted a dog the week before 8 May 2023."),
        ("We camped last weekend.", "We camped the weekend before 8 May 2023."),
        ("I moved last month.", "I moved in April 2023."),
        ("I moved in January, so since last month.", "I moved in January, so since April 2023."),
        ("I started painting last year.", "I started painting in 2022."),
        ("I have painted since last year.", "I have painted since 2022."),
        ("I quit two years ago.", "I quit in 2021."),
        ("I sold it 3 days ago.", "I sold it on 5 May 2023."),
        ("I met her a few weeks ago.", "I met her a few weeks before 8 May 2023."),
        ("We camped two weekends ago.", "We camped 2 weekends before 8 May 2023."),
        ("I fly tomorrow.", "I fly on 9 May 2023."),
        ("I start a new job next month.", "I start a new job in June 2023."),
        ("I met him 5 months ago.", "I met him in December 2022."),
        ("I went to a concert the day before yesterday.", "I went to a concert on 6 May 2023."),
        ("I have a dog named Rex.", "I have a dog named Rex."),
        ("It was my last year of school.", "It was my last year of school."),
        ("Last year's trip was great.", "Last year's trip was great."),
        ("I spent the last week packing.", "I spent the last week packing."),
    ],
)
def test_a_relative_time_is_written_as_the_date_it_means(said, dated):
    assert anchor_times(said, MAY_8) == dated


def test_without_a_day_to_count_from_the_text_is_unchanged():
    assert anchor_times("I went hiking yesterday.", None) == "I went hiking yesterday."


@pytest.mark.parametrize(
    ("said_at", "day"),
    [
        ("1:56 pm on 8 May, 2023", MAY_8),
        ("May 8, 2023", MAY_8),
        ("2023-05-08T13:56:00+00:00", MAY_8),
        ("8th May 2023", MAY_8),
        ("sometime in spring", None),
        ("31 February, 2023", None),
    ],
)
def test_the_day_a_message_was_said_is_read_from_the_time_its_source_wrote(said_at, day):
    assert said_on(LogEntry(1, "user", "hi", said_at=said_at)) == day


def test_a_message_with_no_recorded_time_was_said_when_it_was_logged():
    entry = LogEntry(1, "user", "hi", at="2026-12-07T09:30:00+00:00")
    assert said_on(entry) == date(2026, 12, 7)
    assert said_on(LogEntry(1, "user", "hi")) is None


def test_a_line_is_dated_from_the_message_it_came_from():
    messages = [
        LogEntry(1, "user", "I adopted a dog.", speaker="Ana", said_at="1 May, 2023"),
        LogEntry(2, "user", "I bought a red kayak.", speaker="Ben", said_at="8 May, 2023"),
    ]
    assert date_of_line("Ben bought a kayak yesterday.", messages) == MAY_8
    assert date_of_line("Ana adopted a dog last week.", messages) == date(2023, 5, 1)
    assert date_of_line("Someone did something.", messages) is None
    chris = [
        *messages,
        LogEntry(3, "user", "I bought a kayak.", speaker="Chris", said_at="2 May 2023"),
    ]
    assert date_of_line("Chris's kayak is red.", chris) == date(2023, 5, 2)
    same_day = [LogEntry(1, "user", "x", said_at="8 May, 2023")] * 2
    assert date_of_line("Anything at all.", same_day) == MAY_8


def test_facts_listed_with_relative_times_are_stored_with_dates():
    said = [LogEntry(1, "user", "I ran a race last Saturday!", speaker="Mel", said_at="8 May 2023")]
    assert dated_facts(["Mel ran a race last Saturday.", "Mel has two kids."], said) == (
        "Mel ran a race the Saturday before 8 May 2023.",
        "Mel has two kids.",
    )
