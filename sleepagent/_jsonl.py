"""Reading a JSONL file one object a line, with errors that name the file and the line."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["json_objects"]

FileError = Callable[..., Exception]
"""An error class taking ``(message, *, path=, line=)``."""


def json_objects(path: Path, error: FileError) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line of ``path``, in order.

    Raises:
        Exception: ``error(message, path=path, line=number)`` for a line that is not
            JSON, or not a JSON object.

    """
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as failed:
                raise error(f"not valid JSON ({failed.msg})", path=path, line=number) from failed
            if not isinstance(record, dict):
                raise error("expected a JSON object", path=path, line=number)
            yield number, record
