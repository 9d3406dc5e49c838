"""Home and article pages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from crawler.web.text import side_by_side

if TYPE_CHECKING:
    from crawler.web.app import Room

NEWEST = 5
HOME_RUNS = 8


def home(room: Room, request: Request) -> Response:
    reader = room.reader
    sections = reader.sections()
    newest = {name: reader.newest(name, NEWEST) for name in sections}
    return room.render(request, "home.html", total=reader.total(), sections=sections,
                       newest=newest, revisions=reader.repo.revisions.estimated_document_count(),
                       runs=reader.last_runs(HOME_RUNS))


def article(room: Room, request: Request) -> Response:
    url = request.query_params.get("url", "")
    if not url:
        return room.error(request, 400, "which article? (?url=…)")
    doc = room.reader.article(url)
    if doc is None:
        return room.error(request, 404, f"no stored article at {url}")
    reader = room.reader
    art = reader.repo.to_export(doc)
    revisions = reader.repo.revisions_of(art["url"])
    # Each revision against the version that replaced it (the newest against the article).
    versions: list[dict[str, Any]] = []
    newer: dict[str, Any] = {"title": art["title"], "body": art["body"], "label": "current"}
    for rev in revisions:
        versions.append({
            "rev": rev, "newer_label": newer["label"],
            "title_changed": (rev.get("title") or "") != (newer["title"] or ""),
            "newer_title": newer["title"],
            "rows": side_by_side(rev.get("body") or "", newer["body"] or "")})
        newer = {"title": rev.get("title"), "body": rev.get("body"),
                 "label": f"archived {_short(rev.get('archived_at'))}"}
    original = art.get("near_duplicate_of")
    return room.render(
        request, "article.html", a=art, revision_count=doc.get("revision_count") or 0,
        versions=versions, republished=reader.republished_as(art["url"]),
        original_title=reader.titles([original]).get(original) if original else None,
        captured={u: bool(room.archive.captures(u)) for u in art["urls"]})


def _short(value: Any) -> str:
    from crawler.web.app import when

    return when(value)
