"""Search page and its downloads: the store's own search, as `gzarchive query --search`.

Rows come from ``ArticleRepository.find`` with the same arguments the query command
passes (section resolved in either script, dates as ``parse_date`` reads them), read up
to ``COUNT_AHEAD`` rows past the page to say how many there are; the downloads stream
every match through the export command's writer.
"""

from __future__ import annotations

import argparse
import io
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from crawler.cli.common import CliError
from crawler.cli.export import parse_date, resolve_section, write
from crawler.web.text import highlight, snippet

if TYPE_CHECKING:
    from crawler.web.app import Room

PER_PAGE = 20
#: Rows read past the current page to count the results ("more than N" past it).
COUNT_AHEAD = 30
EXPORT_CHUNK = 100
MAX_PAGE = 500


class BadQuery(ValueError):
    """A filter the page cannot use (one line for the user)."""


@dataclass(frozen=True)
class Query:
    words: str
    section: str | None
    since: datetime | None
    until: datetime | None
    hide_dups: bool
    page: int
    raw: dict[str, str]

    def find_args(self, repo: Any) -> dict[str, Any]:
        try:
            section = resolve_section(repo, self.section) if self.section else None
        except CliError as exc:
            raise BadQuery(str(exc)) from exc
        return {"section": section, "since": self.since, "until": self.until,
                "search": self.words or None, "include_near_duplicates": not self.hide_dups}


def parse(request: Request) -> Query:
    params = request.query_params
    dates: dict[str, datetime | None] = {}
    for name in ("since", "until"):
        value = (params.get(name) or "").strip()
        try:
            dates[name] = parse_date(value) if value else None
        except argparse.ArgumentTypeError as exc:
            raise BadQuery(f"{name}: {exc}") from exc
    if dates["since"] and dates["until"] and dates["since"] >= dates["until"]:
        raise BadQuery("since must be before until")
    try:
        page = max(1, min(MAX_PAGE, int(params.get("page") or 1)))
    except ValueError as exc:
        raise BadQuery("page must be a number") from exc
    raw = {k: params.get(k) or "" for k in ("q", "section", "since", "until", "nd")}
    return Query(words=(params.get("q") or "").strip(),
                 section=(params.get("section") or "").strip() or None,
                 since=dates["since"], until=dates["until"], hide_dups=params.get("nd") == "1",
                 page=page, raw=raw)


def search(room: Room, request: Request) -> Response:
    repo = room.reader.repo
    sections = list(room.reader.sections())
    try:
        query = parse(request)
        args = query.find_args(repo)
    except BadQuery as exc:
        return room.render(request, "search.html", status=400, error=str(exc), rows=[],
                           query=None, raw=dict(request.query_params), sections=sections,
                           count=0, more=False, pages=0)
    start = (query.page - 1) * PER_PAGE
    docs = list(repo.find(**args, limit=start + PER_PAGE + COUNT_AHEAD + 1))
    more = len(docs) > start + PER_PAGE + COUNT_AHEAD
    count = min(len(docs), start + PER_PAGE + COUNT_AHEAD)
    rows = []
    for doc in docs[start:start + PER_PAGE]:
        art = repo.to_export(doc)
        rows.append({"a": art, "title": highlight(art["title"] or "", query.words),
                     "snippet": snippet(art["body"] or "", query.words)})
    pages = (count + PER_PAGE - 1) // PER_PAGE
    return room.render(request, "search.html", error=None, rows=rows, query=query,
                       raw=query.raw, sections=sections, count=count, more=more, pages=pages)


def export(room: Room, request: Request) -> Response:
    fmt = request.path_params["fmt"]
    if fmt not in ("jsonl", "csv"):
        return room.error(request, 404, f"no export format {fmt!r} (jsonl or csv)")
    repo = room.reader.repo
    try:
        args = parse(request).find_args(repo)
    except BadQuery as exc:
        return room.error(request, 400, str(exc))
    media = "application/x-ndjson" if fmt == "jsonl" else "text/csv"
    return StreamingResponse(
        _chunks(repo, args, fmt), media_type=f"{media}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="gzarchive-search.{fmt}"'})


def _chunks(repo: Any, args: dict[str, Any], fmt: str) -> Iterator[bytes]:
    docs = repo.find(**args)
    first = True
    while True:
        chunk = list(itertools.islice(docs, EXPORT_CHUNK))
        if not chunk and not first:
            return
        buf = io.StringIO()
        write(chunk, repo, fmt, buf)
        text = buf.getvalue()
        if fmt == "csv" and not first:
            text = text.split("\r\n", 1)[1] if "\r\n" in text else ""
        first = False
        yield text.encode("utf-8")
        if not chunk:
            return
