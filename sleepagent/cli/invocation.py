"""How the user started this command, so the hints it prints can be pasted as they are.

After ``.venv/bin/sleepagent demo`` (a virtual environment that is not
activated) a hint saying ``sleepagent memory list`` fails with "command not
found"; it has to say ``.venv/bin/sleepagent`` too.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["invoked_as"]


def invoked_as(
    argv0: str | None = None,
    executable: str | None = None,
    which: Callable[[str], str | None] = shutil.which,
) -> str:
    """The command to type for ``sleepagent`` in the shell the user ran it from.

    Args:
        argv0: The program's ``sys.argv[0]`` (default: this process's).
        executable: The Python interpreter (default: ``sys.executable``).
        which: Finds a program on ``PATH``.

    Returns:
        ``sleepagent`` when that name runs this very script; the script's path as
        typed (``.venv/bin/sleepagent``) when it is not on ``PATH``; for
        ``python -m sleepagent``, that, with the interpreter's path unless
        ``python`` on ``PATH`` is this interpreter.

    """
    argv0 = sys.argv[0] if argv0 is None else argv0
    executable = sys.executable if executable is None else executable
    script = Path(argv0)
    if script.name == "sleepagent":
        found = which("sleepagent")
        if found is not None and Path(found).absolute() == script.absolute():
            return "sleepagent"
        return shlex.quote(argv0)
    found = which("python")
    python = "python" if found is not None and Path(found) == Path(executable) else executable
    return f"{shlex.quote(python)} -m sleepagent"
