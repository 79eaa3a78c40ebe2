"""LangGraph Server custom route: the memory inspector at ``/inspector/``, on the server's store.

``langgraph_inspector.json`` names :data:`app` as ``http.app``. The inspector reads
the server's store through the server's own store API, in-process
(``langgraph_sdk.get_client(url=None)``), and only reads. With
``enable_custom_route_auth`` the server's own authentication (``auth`` in the
config) guards the page too; without it, anyone who can reach the server can
read every memory block.
"""

from __future__ import annotations

from langgraph_sdk import get_client
from starlette.applications import Starlette
from starlette.routing import Mount

from sleepagent.inspector import create_app
from sleepagent.inspector.server_store import ServerStore


def server_store() -> ServerStore:
    # Created on the first request: the in-process client needs the running server.
    return ServerStore(get_client(url=None, api_key=None))


app = Starlette(routes=[Mount("/inspector", app=create_app(store=server_store))])
