"""Where a bot keeps its database when none is given: the user's state folder.

A bot started from a checkout would otherwise leave ``slack-bot.db`` in whatever
folder it was started from, and find a different, empty memory when started
from another. The XDG base-directory rule puts such data in ``$XDG_STATE_HOME``
(``~/.local/state`` when unset); the terminal chat keeps its input history there too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["bot_db", "state_dir"]


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/sleepagent``, else ``~/.local/state/sleepagent`` (not created).

    Args:
        env: The environment to read; ``None`` reads ``os.environ``.

    """
    env = os.environ if env is None else env
    state = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "sleepagent"


def bot_db(name: str, env: Mapping[str, str] | None = None) -> str:
    """The database a bot named ``name`` uses: ``$SLEEPAGENT_DB``, else one in the state folder.

    Args:
        name: The bot's file name without extension, such as ``"slack-bot"``.
        env: The environment to read; ``None`` reads ``os.environ``.

    Returns:
        ``$SLEEPAGENT_DB`` as given (a file or a URL), else ``<state_dir()>/<name>.db``,
        whose folder this creates.

    """
    env = os.environ if env is None else env
    given = env.get("SLEEPAGENT_DB", "").strip()
    if given:
        return given
    folder = state_dir(env)
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder / f"{name}.db")
