"""Search page and its downloads: the store's own search, as `gzarchive query --search`.

Rows come from ``ArticleRepository.find`` with the same arguments the query command
passes (section resolved in either script, dates as ``parse_date`` reads them). How many
there are: a listing of one section or of all (no dates, near-duplicates shown) is
counted exactly by the store's kept counts, so only the page's rows are read; any other
query reads ``COUNT_AHEAD`` row past the page ("more than N" when there is one). The
downloads stream every match through the export command's writer.
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

from crawler.cli.export import parse_date, section_label, write
from crawler.web.text import highlight, snippet

if TYPE_CHECKING:
    from crawler.web.app import Room

PER_PAGE = 20
#: Rows a search reads past the current page: one says whether there is a next page
#: ("more than N"). Each row read is a fetched and checked candidate: 30 rows ahead made
#: page 3 of a one-section search ~40 % slower (over 200 ms at 8,700 articles).
COUNT_AHEAD = 1
EXPORT_CHUNK = 100
MAX_PAGE = 500
#: Page links shown either side of the current page (and the first and the last).
PAGE_LINKS = 5


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

    def find_args(self, known: dict[str, int]) -> dict[str, Any]:
        """``find``'s arguments, the section resolved among the ``known`` ones."""
        section = resolve_section(self.section, known) if self.section else None
        return {"section": section, "since": self.since, "until": self.until,
                "search": self.words or None, "include_near_duplicates": not self.hide_dups}

    def exact_count(self, args: dict[str, Any], known: dict[str, int], total: int) -> int | None:
        """How many rows a listing has, from the kept counts; None when they cannot say."""
        if self.words or self.since or self.until or self.hide_dups:
            return None
        return known.get(args["section"], 0) if args["section"] else total


def resolve_section(value: str, known: dict[str, int]) -> str:
    """The stored label ``value`` names (either script, width or case), as ``gzarchive
    query`` resolves it, read from the kept section counts instead of the articles."""
    from crawler.textnorm import fold_label

    label = section_label(value) or ""
    if label in known:
        return label
    for name in sorted(known):
        if fold_label(name) == fold_label(label):
            return name
    raise BadQuery(f"unknown section {value!r}; known sections: "
                   f"{', '.join(sorted(known)) if known else 'none (no articles stored)'}")


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
    counts = room.reader.counts()
    known = counts.by_section
    sections = list(known)
    try:
        query = parse(request)
        args = query.find_args(known)
    except BadQuery as exc:
        return room.render(request, "search.html", status=400, error=str(exc), rows=[],
                           query=None, raw=dict(request.query_params), sections=sections,
                           count=0, more=False, pages=0, links=[])
    start = (query.page - 1) * PER_PAGE
    exact = query.exact_count(args, known, counts.total)
    if exact is not None:
        docs = list(repo.find(**args, limit=start + PER_PAGE)) if start < exact else []
        count, more = exact, False
    else:
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
                       raw=query.raw, sections=sections, count=count, more=more, pages=pages,
                       links=page_links(query.page, min(pages, MAX_PAGE)))


def page_links(page: int, pages: int) -> list[int | None]:
    """The page numbers the navigation shows: the first, the last and ``PAGE_LINKS``
    either side of ``page``; ``None`` where some are left out."""
    shown = sorted({1, pages, *range(max(1, page - PAGE_LINKS), min(pages, page + PAGE_LINKS) + 1)}
                   - {0})
    out: list[int | None] = []
    for p in shown:
        if out and p - (out[-1] or 0) > 1:
            out.append(None)
        out.append(p)
    return out


def export(room: Room, request: Request) -> Response:
    fmt = request.path_params["fmt"]
    if fmt not in ("jsonl", "csv"):
        return room.error(request, 404, f"no export format {fmt!r} (jsonl or csv)")
    repo = room.reader.repo
    try:
        args = parse(request).find_args(room.reader.sections())
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
