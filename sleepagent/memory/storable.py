r"""What text every backend can store, decided once.

SQLite stores UTF-8, so a lone surrogate (``"\ud800"``) cannot be written;
PostgreSQL text and JSONB cannot hold NUL (``"\x00"``). One rule for every
backend: text with either is refused before any model call is made, so the
outcome never depends on where the data lives.
"""

from __future__ import annotations

import re

from sleepagent.errors import ConfigurationError

__all__ = ["require_storable", "storable", "unstorable_reason"]

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable_reason(text: str) -> str | None:
    """Why ``text`` cannot be stored on every backend, or None when it can."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    char = found.group()
    what = "a NUL character" if char == "\x00" else f"a lone surrogate (U+{ord(char):04X})"
    return f"it contains {what} at position {found.start()}, which no backend can store"


def require_storable(text: str, *, what: str) -> None:
    """Refuse ``text`` that cannot be stored.

    Raises:
        ConfigurationError: Naming ``what`` and the offending character.

    """
    reason = unstorable_reason(text)
    if reason is not None:
        raise ConfigurationError(
            f"{what} cannot be stored: {reason}. Remove it or replace it (for example with "
            "'\\ufffd') before passing the text"
        )


def storable(text: str) -> str:
    """``text`` with every unstorable character replaced by U+FFFD (for model output)."""
    return _UNSTORABLE.sub("\ufffd", text)
