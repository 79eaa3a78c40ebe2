"""The memory inspector: a local web page showing what sleep-time compute did to memory.

Install with ``pip install 'sleepagent[inspect]'`` and run ``sleepagent inspect
--db FILE_OR_URL``, or mount :func:`create_app` in your own ASGI server. Importing
``sleepagent`` never imports this package; importing this package imports its web
stack (Starlette, Jinja2) only when :func:`create_app` is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sleepagent.inspector.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Lazy, so `sleepagent inspect --help` and the CLI's parser work without the extra.
    if name == "create_app":
        from sleepagent.inspector.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
