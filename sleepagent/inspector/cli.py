"""``sleepagent inspect``: serve the memory inspector for a database.

The top-level command line registers this command with :func:`add_parser` and
calls :func:`run` for it. Nothing from the web stack is imported until
:func:`run`, so the rest of the command line works without the ``inspect`` extra.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
import webbrowser
from pathlib import Path
from typing import Any, TextIO

from sleepagent.errors import SleepAgentError
from sleepagent.store.persistence import is_postgres_url, open_persistence

__all__ = ["add_parser", "is_loopback", "no_auth_warning", "run"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``inspect`` command to a command line's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "inspect",
        help="browse memory blocks, their history and sleep runs in a local web page",
        description="Serve a read-only web page showing the memory of a sleepagent "
        "database: scopes, blocks, every version with its diff, sleep runs and token "
        "usage per phase. It refreshes while a bot writes to the database. "
        "Needs the 'inspect' extra: pip install 'sleepagent[inspect]'.",
    )
    parser.add_argument("--db", required=True, help="SQLite file or postgresql:// URL of the agent")
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default: {DEFAULT_HOST}; the page has no authentication)",
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT}; 0: any)"
    )
    parser.add_argument(
        "--no-browser", action="store_true", help="do not open the page in a web browser"
    )
    parser.add_argument(
        "--refresh", type=float, default=2.0, help="seconds between page refreshes (default: 2)"
    )
    return parser


def run(
    args: argparse.Namespace, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """Serve the inspector until interrupted; returns the exit status."""
    out, err = stdout or sys.stdout, stderr or sys.stderr
    if not is_postgres_url(args.db) and not Path(args.db).is_file():
        print(f"sleepagent inspect: no database at {args.db}", file=err)
        return 1
    try:
        import uvicorn

        from sleepagent.inspector.app import create_app, describe_source
    except ImportError as missing:
        print(
            f"sleepagent inspect needs the 'inspect' extra ({missing.name} is missing): "
            "pip install 'sleepagent[inspect]'",
            file=err,
        )
        return 1
    try:
        _check_database(args.db)
    except SleepAgentError as error:
        print(f"sleepagent inspect: {error}", file=err)
        return 1
    if not is_loopback(args.host):
        print(no_auth_warning(args.host), file=err, flush=True)
    listener = _listen(args.host, args.port)
    port = listener.getsockname()[1]
    url = f"http://{_url_host(args.host)}:{port}/"
    source = describe_source(args.db)
    print(
        f"Memory inspector of {source} on {url} (read-only; Ctrl-C to stop)", file=out, flush=True
    )
    if not args.no_browser:
        webbrowser.open(url)
    app = create_app(args.db, refresh_seconds=args.refresh)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    try:
        server.run(sockets=[listener])
    finally:
        listener.close()
    return 0


def _check_database(db: str) -> None:
    """Open the database once, and close it.

    A bad URL or a missing driver is then told in one line before the page is
    announced, not as a traceback from the server's start (which opens it again).
    """
    with open_persistence(db):
        pass


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def no_auth_warning(host: str) -> str:
    """What the command prints when it listens beyond loopback."""
    return (
        f"WARNING: the memory inspector has NO AUTHENTICATION. Listening on {host}, it lets "
        "anyone who can reach this address read every memory block of this database. "
        f"Use --host {DEFAULT_HOST} (the default), or mount sleepagent.inspector.create_app "
        "behind your own authentication."
    )


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket, bound before the server starts so the URL printed is the real one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(128)
    return listener


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
