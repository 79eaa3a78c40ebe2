"""Relative times in a fact, anchored to the day it was said.

"I adopted a dog last week" is true the day it is said and misleading a month
later: memory outlives the conversation, so a fact kept as said loses its time.
A fact line that says "yesterday", "last week" or "two years ago" is rewritten
with the date of the message it came from ("the week before 8 May 2023"), in the
words a person would use when the date is all that is known. The same rewriting
is applied to what was said, so the dated line is still grounded in it.

Pure functions over text and dates; the fact pass calls them.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta

from sleepagent.memory.transcript import LogEntry
from sleepagent.sleep.speakers import line_subject
from sleepagent.sleep.wording import content_stems

__all__ = ["anchor_times", "date_of_line", "said_on"]

_MONTHS = {name.lower(): number for number, name in enumerate(calendar.month_name) if name}
_MONTHS |= {name.lower(): number for number, name in enumerate(calendar.month_abbr) if name}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DAY_MONTH_YEAR = re.compile(
    rf"\b(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s+(?P<month>{_MONTH})\.?,?\s+(?P<year>\d{{4}})\b",
    re.IGNORECASE,
)
_MONTH_DAY_YEAR = re.compile(
    rf"\b(?P<month>{_MONTH})\.?\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<year>\d{{4}})\b",
    re.IGNORECASE,
)
_ISO_DAY = re.compile(r"\b(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})\b")


def said_on(entry: LogEntry) -> date | None:
    """The day ``entry`` was said: its recorded time, else when it was logged.

    An import's time is free text as its source wrote it; ISO dates and day,
    month name and year in either order ("1:56 pm on 8 May, 2023", "May 8, 2023")
    are read. None when neither time can be read.
    """
    for text in (entry.said_at, entry.at):
        if text:
            found = _parse_day(text)
            if found is not None:
                return found
    return None


def _parse_day(text: str) -> date | None:
    for pattern in (_ISO_DAY, _DAY_MONTH_YEAR, _MONTH_DAY_YEAR):
        match = pattern.search(text)
        if match is None:
            continue
        month = match["month"]
        number = int(month) if month.isdigit() else _MONTHS[month.lower()]
        try:
            return date(int(match["year"]), number, int(match["day"]))
        except ValueError:
            continue
    try:
        return datetime.fromisoformat(text.strip()).date()
    except ValueError:
        return None


def date_of_line(line: str, entries: Sequence[LogEntry]) -> date | None:
    """The day the message ``line`` states a fact from was said, if it can be told.

    When every dated message of ``entries`` was said the same day, that day.
    Otherwise the message sharing the most words with ``line`` (a line that
    starts with a speaker's name is looked for among that speaker's messages
    first); None when no message shares a word with it.
    """
    dated = [(entry, day) for entry in entries if (day := said_on(entry)) is not None]
    if not dated:
        return None
    if len({day for _, day in dated}) == 1:
        return dated[0][1]
    stems = content_stems(line)
    first = line_subject(line)
    own = [(e, d) for e, d in dated if e.speaker and e.speaker.lower() == first]
    best, best_overlap = None, 0
    for entry, day in own or dated:
        overlap = len(stems & content_stems(entry.text))
        if overlap > best_overlap:
            best, best_overlap = day, overlap
    return best


# --- the rewriting -------------------------------------------------------------------

_WEEKDAYS = "|".join(name.lower() for name in calendar.day_name)
_COUNT_WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "a couple of": 2,
    "a couple": 2,
}
_COUNT = r"\d{1,2}|" + "|".join(sorted(_COUNT_WORDS, key=len, reverse=True))
_PREPOSITIONS = frozenset(
    {"on", "in", "since", "from", "until", "till", "by", "before", "after", "during", "of"}
)
_DETERMINERS = frozenset({"the", "a", "my", "your", "his", "her", "our", "their", "its", "that"})
"""Words before "last year" that make it a thing, not a time ("my last year of school")."""

_RELATIVE = re.compile(
    r"\b(?:"
    r"(?P<before_yesterday>the day before yesterday)"
    r"|(?P<yesterday>yesterday|last night)"
    r"|(?P<today>today|this morning|this afternoon|this evening|tonight)"
    r"|(?P<tomorrow>tomorrow)"
    r"|(?:last|this past)\s+(?P<last_weekday>" + _WEEKDAYS + r")"
    r"|(?P<which>last|this|next)\s+(?P<unit>week|weekend|month|year)(?!'s|\s+of\b)"
    r"|(?P<few>a few)\s+(?P<few_unit>day|weekend|week|month|year)s\s+ago"
    r"|(?P<count>" + _COUNT + r")\s+(?P<ago_unit>day|weekend|week|month|year)s?\s+ago"
    r")\b",
    re.IGNORECASE,
)


def anchor_times(text: str, on: date | None) -> str:
    """``text`` with its relative times written as dates, counted from ``on``.

    "yesterday" said on 8 May 2023 becomes "on 7 May 2023", "last week" "the
    week before 8 May 2023", "last Friday" "the Friday before 8 May 2023", "last
    month" "in April 2023", "two years ago" "in 2021". A preposition already in
    front is kept ("since last year" becomes "since 2022"). Unchanged when ``on``
    is None or nothing in ``text`` is relative.
    """
    if on is None:
        return text
    pieces: list[str] = []
    done = 0
    for match in _RELATIVE.finditer(text):
        phrase = _dated_phrase(match, on)
        before = text[done : match.start()]
        previous = before.rstrip().rsplit(maxsplit=1)[-1].lower() if before.strip() else ""
        if match["unit"] and previous in _DETERMINERS:
            continue
        if previous in _PREPOSITIONS:
            phrase = re.sub(r"^(?:on|in) ", "", phrase)
        if match.group(0)[0].isupper() and not before.strip():
            phrase = phrase[0].upper() + phrase[1:]
        pieces += [before, phrase]
        done = match.end()
    return "".join([*pieces, text[done:]])


def _dated_phrase(match: re.Match[str], on: date) -> str:
    day = _day_text
    if match["before_yesterday"]:
        return f"on {day(on - timedelta(days=2))}"
    if match["yesterday"]:
        return f"on {day(on - timedelta(days=1))}"
    if match["today"]:
        return f"on {day(on)}"
    if match["tomorrow"]:
        return f"on {day(on + timedelta(days=1))}"
    if match["last_weekday"]:
        return f"the {match['last_weekday'].capitalize()} before {day(on)}"
    if match["unit"]:
        return _calendar_phrase(match["which"].lower(), match["unit"].lower(), on)
    if match["few"]:
        return f"a few {match['few_unit'].lower()}s before {day(on)}"
    count_text = match["count"].lower()
    count = int(count_text) if count_text.isdigit() else _COUNT_WORDS[count_text]
    unit = match["ago_unit"].lower()
    if unit == "day":
        return f"on {day(on - timedelta(days=count))}"
    if unit in ("week", "weekend"):
        weeks = f"the {unit}" if count == 1 else f"{count} {unit}s"
        return f"{weeks} before {day(on)}"
    if unit == "month":
        return f"in {_month_text(on, -count)}"
    return f"in {on.year - count}"


def _calendar_phrase(which: str, unit: str, on: date) -> str:
    if unit in ("week", "weekend"):
        relation = {"last": "before", "this": "of", "next": "after"}[which]
        return f"the {unit} {relation} {_day_text(on)}"
    step = {"last": -1, "this": 0, "next": 1}[which]
    if unit == "month":
        return f"in {_month_text(on, step)}"
    return f"in {on.year + step}"


def _day_text(day: date) -> str:
    return f"{day.day} {calendar.month_name[day.month]} {day.year}"


def _month_text(on: date, months: int) -> str:
    index = on.year * 12 + on.month - 1 + months
    return f"{calendar.month_name[index % 12 + 1]} {index // 12}"
