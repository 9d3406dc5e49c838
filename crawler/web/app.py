"""The reading room's application: routes, templates (autoescaped) and static files.

``create_app(repo, warc_dir, token=None, replay="auto")`` builds the Starlette app over
an open :class:`~storage.mongo.articles.ArticleRepository` (``gzarchive serve`` opens it
read-only as ``query`` does). Handlers are plain functions run in Starlette's thread pool
(pymongo blocks). ``replay``: ``pywb`` or ``auto`` (pywb when it is installed) replays
archived pages with a managed pywb (crawler/web/pywb.py, started at the first replay
request or by :func:`start_replay`, stopped with the app or by :func:`close_app`);
``builtin`` uses the app's own WARC reader only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from crawler.web.archive import Archive
from crawler.web.pywb import PywbReplay
from crawler.web.reader import Reader
from crawler.web.security import Guard

HERE = Path(__file__).resolve().parent
Handler = Callable[["Room", Request], Response]


class Room:
    """What every handler needs: the reader, the archive, the templates."""

    def __init__(self, reader: Reader, archive: Archive, pywb: PywbReplay | None = None,
                 replay_note: str = "") -> None:
        self.reader = reader
        self.archive = archive
        self.pywb = pywb
        self.replay_note = replay_note  # why replay is not by pywb, said on the page
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                                 autoescape=True, undefined=jinja2.ChainableUndefined)
        env.filters["when"] = when
        env.globals["qs"] = qs
        self.templates = Jinja2Templates(env=env)
        for name in env.list_templates(extensions=["html"]):  # compiled at start (~50 ms
            env.get_template(name)                            # each), not at a first request

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        return self.templates.TemplateResponse(request, name, context, status_code=status)

    def error(self, request: Request, status: int, message: str) -> Response:
        return self.render(request, "error.html", status=status, message=message)


def when(value: Any) -> str:
    """An ISO 8601 date (+08:00) as "YYYY-MM-DD HH:MM"; datetimes in Beijing time."""
    if value is None or value == "":
        return "–"
    if hasattr(value, "astimezone"):
        from storage.mongo.articles import BEIJING

        return str(value.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M"))
    text = str(value)
    return text[:16].replace("T", " ")


def qs(**params: Any) -> str:
    """A query string of the non-empty parameters."""
    return urlencode({k: v for k, v in params.items() if v not in (None, "", False)})


REPLAY_ENGINES = ("auto", "pywb", "builtin")


def create_app(repo: Any, warc_dir: Path, token: str | None = None,
               replay: str = "auto") -> Starlette:
    from crawler.web import pages, runs, search
    from crawler.web import replay as replays

    if replay not in REPLAY_ENGINES:
        raise ValueError(f"replay engine {replay!r}: one of {', '.join(REPLAY_ENGINES)}")
    pywb, note = None, "--replay builtin"
    if replay != "builtin":
        pywb = PywbReplay(warc_dir, token)
        if pywb.unavailable:
            if replay == "pywb":
                raise ValueError(pywb.unavailable)
            note, pywb = f"pywb is not installed: {pywb.unavailable}", None
    room = Room(Reader(repo), Archive(warc_dir), pywb, note)

    def route(path: str, handler: Handler) -> Route:
        async def endpoint(request: Request) -> Response:
            return await run_in_threadpool(handler, room, request)

        endpoint_typed: Callable[[Request], Awaitable[Response]] = endpoint
        return Route(path, endpoint_typed, methods=["GET", "HEAD"], name=handler.__name__)

    routes = [
        route("/", pages.home),
        route("/article", pages.article),
        route("/search", search.search),
        route("/export.{fmt:str}", search.export),
        route("/runs", runs.runs),
        route("/replay", replays.viewer),
        route("/archived", replays.archived),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
    if pywb is not None:  # /pywb-KEY/… and /pywb-KEY-static/…
        routes.append(route("/pywb-{key:str}/{rest:path}", replays.through_pywb))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            close_app(app)

    app = Starlette(routes=routes, lifespan=lifespan, middleware=[
        Middleware(Guard, token=token, open_path=pywb.owns if pywb is not None else None)])
    app.state.room = room
    return app


def start_replay(app: Starlette) -> None:
    """Start the app's pywb now (not at the first replay), if it has one."""
    room: Room = app.state.room
    if room.pywb is not None:
        room.pywb.start()


def close_app(app: Starlette) -> None:
    """Stop what the app started (its pywb); idempotent."""
    room: Room = app.state.room
    if room.pywb is not None:
        room.pywb.close()
