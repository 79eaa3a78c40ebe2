"""The inspector as a Starlette (ASGI) application.

Routes, all ``GET`` (the inspector never writes):

- ``/``: the scope list; ``/scope?key=user:ada``: one scope.
- ``/api/overview`` and ``/api/scope?key=...``: the same data as JSON.
- ``/live?view=overview|scope&key=...&since=REVISION``: what the page polls;
  it answers ``{"revision": ...}`` alone while nothing changed, and adds the
  re-rendered page body when something did.
- ``/static/...``: the stylesheet and the script, shipped in the package.

Every value from memory, transcripts or model output reaches the page through
Jinja with autoescaping on, and the page is served with a Content-Security-Policy
that allows only this app's own script and stylesheet.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

import jinja2
from langgraph.store.base import BaseStore
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sleepagent.errors import ConfigurationError
from sleepagent.inspector import chart, views
from sleepagent.inspector.reader import InspectorReader
from sleepagent.memory.blocks import MemoryBlock
from sleepagent.results import SleepOutcome
from sleepagent.store.persistence import DbPath, is_postgres_url, open_async_persistence

__all__ = ["StoreSource", "create_app", "describe_source"]

StoreSource = BaseStore | Callable[[], BaseStore | Awaitable[BaseStore]]
"""A store, or a function that returns one (called once, on the first request)."""

SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}

_CHART_CAPTION = (
    "Cumulative tokens. Sleep: one point per sleep run. Chat: the store keeps one total "
    "per thread, drawn at the thread's last turn."
)


def create_app(
    db: DbPath = None,
    *,
    store: StoreSource | None = None,
    declared: Sequence[MemoryBlock] = (),
    refresh_seconds: float = 2.0,
) -> Starlette:
    """The memory inspector as an ASGI app, to serve or to mount in your own server.

    Give exactly one of ``db`` and ``store``. With ``db`` the app opens the
    database itself in its lifespan (so run it as the top-level app, e.g. with
    uvicorn); with ``store`` it reads a store you already own, which is what to
    use when you mount it under your own routes and authentication.

    Args:
        db: A SQLite file or a ``postgresql://`` URL, as given to ``SleepTimeAgent``.
        store: A LangGraph store with async support (``AsyncSqliteStore``,
            ``AsyncPostgresStore``, LangGraph Server's), or a function returning one.
        declared: The agent's declared blocks (their limits and read-only flags);
            by default blocks show as stored.
        refresh_seconds: How often an open page checks for changes.

    Raises:
        ConfigurationError: If neither or both of ``db`` and ``store`` are given.

    """
    if (db is None) == (store is None):
        raise ConfigurationError("create_app needs exactly one of db=... or store=...")
    source = describe_source(db) if db is not None else "the application's store"
    state = _State(store=store, declared=tuple(declared), source=source)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if db is None:
            yield
            return
        async with open_async_persistence(db) as (_saver, opened):
            state.reader = InspectorReader(opened, state.declared)
            yield

    pages = _Pages(state, refresh_ms=int(refresh_seconds * 1000))
    routes = [
        Route("/", pages.overview_page, name="overview"),
        Route("/scope", pages.scope_page, name="scope"),
        Route("/api/overview", pages.overview_json, name="api_overview"),
        Route("/api/scope", pages.scope_json, name="api_scope"),
        Route("/live", pages.live, name="live"),
        Mount("/static", StaticFiles(packages=[("sleepagent.inspector", "static")]), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(_SecurityHeaders)
    return app


@dataclass
class _State:
    store: StoreSource | None
    declared: tuple[MemoryBlock, ...]
    source: str
    reader: InspectorReader | None = None

    async def get_reader(self) -> InspectorReader:
        if self.reader is None:
            if self.store is None:
                raise ConfigurationError(
                    "the inspector's database is opened in its lifespan: run the app "
                    "as the top-level ASGI app, or pass store=... to mount it"
                )
            store = self.store if isinstance(self.store, BaseStore) else self.store()
            if not isinstance(store, BaseStore):
                store = await store
            self.reader = InspectorReader(store, self.declared)
        return self.reader


@dataclass
class _Pages:
    state: _State
    refresh_ms: int
    env: jinja2.Environment = field(init=False)

    def __post_init__(self) -> None:
        # autoescape=True (not select_autoescape): every template escapes, whatever its name.
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("sleepagent.inspector", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.env.filters["when"] = _when
        self.env.filters["outcome_class"] = _outcome_class

    async def overview_page(self, request: Request) -> Response:
        overview = await (await self.state.get_reader()).overview()
        live = f"{_base(request)}/live?view=overview"
        return self._page(request, "overview.html", live, overview=overview)

    async def scope_page(self, request: Request) -> Response:
        key = request.query_params.get("key", "")
        detail = await self._detail(key)
        if isinstance(detail, str):
            return self._not_found(request, detail)
        live = f"{_base(request)}/live?view=scope&key={quote(key, safe='')}"
        return self._page(request, "scope.html", live, detail=detail)

    async def overview_json(self, request: Request) -> Response:
        overview = await (await self.state.get_reader()).overview()
        return JSONResponse({"revision": views.revision(overview), **views.to_json(overview)})

    async def scope_json(self, request: Request) -> Response:
        detail = await self._detail(request.query_params.get("key", ""))
        if isinstance(detail, str):
            return JSONResponse({"error": detail}, status_code=404)
        return JSONResponse({"revision": views.revision(detail), **views.to_json(detail)})

    async def live(self, request: Request) -> Response:
        since = request.query_params.get("since")
        if request.query_params.get("view") == "scope":
            detail = await self._detail(request.query_params.get("key", ""))
            if isinstance(detail, str):
                return JSONResponse({"error": detail}, status_code=404)
            view: Any = detail
            partial, context = "partials/scope_body.html", {"detail": detail}
        else:
            view = await (await self.state.get_reader()).overview()
            partial, context = "partials/overview_body.html", {"overview": view}
        current = views.revision(view)
        if current == since:
            return JSONResponse({"revision": current})
        html = self.env.get_template(partial).render(
            **self._context(request, view, **context), revision=current
        )
        return JSONResponse({"revision": current, "html": html})

    async def _detail(self, key: str) -> views.ScopeDetail | str:
        """The scope's view, or why there is none (the page says it with a 404)."""
        reader = await self.state.get_reader()
        try:
            detail = await reader.scope(key)
        except ValueError:
            return f"{key!r} is not a memory scope: use user:<id> or thread:<id>."
        if not detail.known:
            return (
                f"No memory scope {key} in {self.state.source}: nothing was stored for it. "
                "All scopes lists the ones there are."
            )
        return detail

    def _page(self, request: Request, name: str, live_url: str, **context: Any) -> Response:
        view = context.get("detail") or context["overview"]
        revision = views.revision(view)
        html = self.env.get_template(name).render(
            **self._context(request, view, **context), live_url=live_url, revision=revision
        )
        return HTMLResponse(html)

    def _not_found(self, request: Request, message: str) -> Response:
        html = self.env.get_template("not_found.html").render(
            base=_base(request),
            source=self.state.source,
            refresh_ms=self.refresh_ms,
            live_url="",
            revision="",
            message=message,
        )
        return HTMLResponse(html, status_code=404)

    def _context(self, request: Request, view: Any, **context: Any) -> dict[str, Any]:
        events = (
            chart.scope_events(view)
            if isinstance(view, views.ScopeDetail)
            else chart.overview_events(view)
        )
        return {
            "base": _base(request),
            "source": self.state.source,
            "refresh_ms": self.refresh_ms,
            "chart": chart.layout(events),
            "chart_caption": _CHART_CAPTION,
            **context,
        }


class _SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every response, static files included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in SECURITY_HEADERS.items():
                    if name.encode() not in present:
                        headers.append((name.encode(), value.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _base(request: Request) -> str:
    """The path the app is mounted at ('' at the root), so links work when mounted."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _when(at: str | None) -> str:
    """An ISO time stamp, shortened to the second."""
    if not at:
        return "—"
    try:
        return datetime.fromisoformat(at).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return at


def _outcome_class(outcome: str | None) -> str:
    """CSS class of a run outcome: an edit is good, nothing to add is quiet, the rest warns."""
    if outcome == SleepOutcome.EDITED.value:
        return "good"
    if outcome in (SleepOutcome.UNCHANGED.value, SleepOutcome.NOTHING_NEW.value):
        return "quiet"
    if outcome == SleepOutcome.CONFLICTED.value:
        return "warn"
    return "bad"


def describe_source(db: DbPath) -> str:
    """Where the data comes from, without the credentials of a URL."""
    text = str(db)
    if is_postgres_url(text) and "@" in text:
        scheme, _, rest = text.partition("://")
        return f"{scheme}://…@{rest.rpartition('@')[2]}"
    return text
