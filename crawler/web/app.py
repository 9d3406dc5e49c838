"""The reading room's application: routes, templates (autoescaped) and static files.

``create_app(repo, warc_dir, token=None)`` builds the Starlette app over an open
:class:`~storage.mongo.articles.ArticleRepository` (``gzarchive serve`` opens it read-only
as ``query`` does). Handlers are plain functions run in Starlette's thread pool
(pymongo blocks).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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
from crawler.web.reader import Reader
from crawler.web.security import Guard

HERE = Path(__file__).resolve().parent
Handler = Callable[["Room", Request], Response]


class Room:
    """What every handler needs: the reader, the archive, the templates."""

    def __init__(self, reader: Reader, archive: Archive) -> None:
        self.reader = reader
        self.archive = archive
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


def create_app(repo: Any, warc_dir: Path, token: str | None = None) -> Starlette:
    from crawler.web import pages, replay, runs, search

    room = Room(Reader(repo), Archive(warc_dir))

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
        route("/replay", replay.viewer),
        route("/archived", replay.archived),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(Guard, token=token)])
