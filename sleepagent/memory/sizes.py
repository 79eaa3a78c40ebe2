"""How long a text an entry point admits, decided once.

Every entry point that takes user text (a turn, a graph input, context, and any
later bulk import) refuses an over-long text with the same check, before any
model call or write: a single 1 MB message used to be logged, checkpointed and
sent to the model whole.
"""

from __future__ import annotations

from sleepagent.errors import MessageTooLongError

__all__ = ["require_within_limit"]


def require_within_limit(text: str, limit: int | None, *, what: str, setting: str) -> None:
    """Refuse ``text`` longer than ``limit`` characters (``None``: no limit).

    Args:
        text: The text to admit.
        limit: Most characters allowed, or ``None`` for any length.
        what: What the text is, for the message ("the message").
        setting: The ``SleepConfig`` field that sets ``limit``, for the message.

    Raises:
        MessageTooLongError: Carrying the length, the limit and the setting.

    """
    if limit is not None and len(text) > limit:
        raise MessageTooLongError(what=what, length=len(text), limit=limit, setting=setting)
