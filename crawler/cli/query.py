"""`gzarchive query` (search and filter, for people) and `gzarchive show URL`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from crawler.cli.common import EXIT_OK, EXIT_USAGE, CliError, add_common, open_reader
from crawler.cli.export import parse_date, resolve_section, write

#: Rows counted beyond --limit to say how many more there are; past it, "more than".
#: Counting is a second read, made only when there are more rows: a listing counts in the
#: server (count_documents stops at the cap), a search walks on (about as costly as a
#: search with --limit raised by the cap: measured at 2,000 articles, median 85 ms).
MORE_CAP = 100


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("query", help="search and filter stored articles")
    parser.add_argument("--search", metavar="WORDS",
                        help="words that must all occur in title or body (either script)")
    parser.add_argument("--section", help="only this section (either script); an unknown "
                                          "one is an error listing the known sections")
    parser.add_argument("--since", type=parse_date, help="published on or after DATE")
    parser.add_argument("--until", type=parse_date, help="published before DATE")
    parser.add_argument("--limit", type=int, default=20,
                        help="at most N rows (default 20, 0 = all); how many more there are "
                             f"is said (counted up to {MORE_CAP})")
    parser.add_argument("--format", choices=("table", "jsonl", "csv"), default="table",
                        help="a table for people (default), JSON lines or CSV")
    dup = parser.add_mutually_exclusive_group()
    dup.add_argument("--hide-near-duplicates", dest="near_dups", action="store_false",
                     help="leave out republished near-duplicates")
    dup.add_argument("--show-near-duplicates", dest="near_dups", action="store_true",
                     help="include them (default)")
    parser.set_defaults(near_dups=True)
    add_common(parser)
    parser.set_defaults(func=run)

    show = sub.add_parser("show", help="one article with its revisions and WARC location")
    show.add_argument("url", help="canonical URL or any URL the article was seen at")
    show.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_common(show)
    show.set_defaults(func=run_show)


def run(args: argparse.Namespace) -> int:
    if args.limit < 0:
        raise CliError("--limit must be >= 0", EXIT_USAGE)
    with open_reader(args) as repo:
        wanted = {"section": resolve_section(repo, args.section), "since": args.since,
                  "until": args.until, "include_near_duplicates": args.near_dups}
        docs = list(repo.find(search=args.search, limit=args.limit + 1 if args.limit else None,
                              **wanted))
        more = 0
        if args.limit and len(docs) > args.limit:
            docs = docs[:args.limit]
            more = count_beyond(repo, args.search, wanted, args.limit)
        if args.format != "table":
            write(docs, repo, args.format, sys.stdout)
            if more > 0:
                print(f"gzarchive query: {more_rows(more, args.limit)}", file=sys.stderr)
            return EXIT_OK
        rows = [repo.to_export(doc) for doc in docs]
    _table(rows, args, more)
    return EXIT_OK


def count_beyond(repo: Any, search: str | None, wanted: dict[str, Any], limit: int) -> int:
    """How many rows match beyond the first ``limit``, counted up to MORE_CAP + 1."""
    cap = limit + MORE_CAP + 1
    if search:
        return sum(1 for _ in repo.find(search=search, limit=cap, **wanted)) - limit
    return int(repo.articles.count_documents(listing_filter(repo, wanted), limit=cap)) - limit


def listing_filter(repo: Any, wanted: dict[str, Any]) -> dict[str, Any]:
    """The MongoDB filter of the rows a listing (no search words) returns: what
    ``Filters.accepts`` and the date windows keep (no date bound: undated ones too)."""
    filters = repo.filters(**wanted)
    query: dict[str, Any] = {}
    if filters.section:
        query["sections"] = filters.section
    dates = {op: value for op, value in (("$gte", filters.since), ("$lt", filters.until))
             if value is not None}
    if dates:
        query["published_at"] = dates
    if not filters.include_near_duplicates:
        query["near_duplicate_of"] = None
    return query


def more_rows(more: int, limit: int) -> str:
    """The line saying how many rows --limit left out."""
    count = f"more than {MORE_CAP}" if more > MORE_CAP else str(more)
    return f"{count} more not shown (--limit {limit}; --limit 0 shows all)"


def _table(rows: list[dict[str, Any]], args: argparse.Namespace, more: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(rows)} article(s)" + (f" matching {args.search!r}"
                                                      if args.search else ""),
                  caption=more_rows(more, args.limit) if more > 0 else None)
    table.add_column("published (+08:00)", no_wrap=True)
    table.add_column("sections")
    table.add_column("title")
    table.add_column("url", overflow="fold")
    for row in rows:
        title = row["title"] or ""
        if row.get("near_duplicate_of"):
            title += " [near-duplicate]"
        table.add_row((row.get("published_at") or "")[:16].replace("T", " "),
                      ", ".join(row.get("sections") or []), title, row["url"])
    Console().print(table)


def run_show(args: argparse.Namespace) -> int:
    from crawler.urls import canonicalize

    with open_reader(args) as repo:
        doc = repo.get(args.url) or repo.get(canonicalize(args.url))
        if doc is None:
            raise CliError(f"no stored article at {args.url}", EXIT_USAGE)
        article = repo.to_export(doc)
        revisions = [repo.to_export(r) | {k: _iso(r.get(k)) for k in
                                          ("archived_at", "superseded_at")}
                     for r in repo.revisions_of(article["url"])]
    if args.json:
        print(json.dumps({"article": article, "revisions": revisions}, ensure_ascii=False,
                         indent=2, default=str))
        return EXIT_OK
    print(article["title"])
    print(f"{article['published_at']}  来源: {article['source']}  编辑: {article['editor']}"
          f"  责编: {article['chief_editor'] or '-'}")
    print(f"url       : {article['url']}")
    for other in article["urls"]:
        if other != article["url"]:
            print(f"seen at   : {other}")
    print(f"sections  : {', '.join(article['sections'])}")
    warc = article.get("warc") or {}
    print(f"WARC      : {warc.get('file')} @ {warc.get('offset')}")
    print(f"first/last: {article['first_seen']} / {article['last_seen']}")
    if article.get("near_duplicate_of"):
        print(f"near-duplicate of: {article['near_duplicate_of']}")
    print(f"revisions : {len(revisions)}")
    for rev in revisions:
        print(f"  - superseded {rev.get('superseded_at')}: {rev.get('title')} "
              f"(hash {str(rev.get('content_hash'))[:12]})")
    print()
    print(article["body"])
    for image in article["images"]:
        print(f"[image] {image['url']}  {image.get('caption') or ''}")
    return EXIT_OK


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value
