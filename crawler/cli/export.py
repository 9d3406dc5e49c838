"""`gzarchive export`: stored articles to stdout as JSON lines or CSV."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import datetime, timedelta, timezone
from typing import Any

from crawler.cli.common import EXIT_OK, EXIT_USAGE, CliError, add_common, open_store

BEIJING = timezone(timedelta(hours=8))
CSV_FIELDS = ("url", "title", "published_at", "source", "editor", "chief_editor", "sections",
              "body", "images", "urls", "near_duplicate_of", "first_seen", "last_seen",
              "content_hash", "warc")


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("export", help="write stored articles to stdout")
    parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    parser.add_argument("--section", help="only this section (either script)")
    parser.add_argument("--since", type=parse_date, help="published on or after DATE")
    parser.add_argument("--until", type=parse_date, help="published before DATE (exclusive)")
    parser.add_argument("--no-near-duplicates", action="store_true",
                        help="leave out articles flagged as near-duplicates")
    add_common(parser)
    parser.set_defaults(func=run)


def parse_date(value: str) -> datetime:
    """YYYY-MM-DD or full ISO 8601; naive values are Beijing time."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date: {value!r} (use YYYY-MM-DD)") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=BEIJING)


def section_label(value: str | None) -> str | None:
    if value is None:
        return None
    from crawler.textnorm import to_simplified

    return to_simplified(value.strip())


def run(args: argparse.Namespace) -> int:
    if args.since and args.until and args.since >= args.until:
        raise CliError("--since must be before --until", EXIT_USAGE)
    with open_store(args) as repo:
        docs = repo.find(section=section_label(args.section), since=args.since,
                         until=args.until,
                         include_near_duplicates=not args.no_near_duplicates)
        write(docs, repo, args.format, sys.stdout)
    return EXIT_OK


def write(docs: Any, repo: Any, fmt: str, out: Any) -> int:
    count = 0
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore") \
        if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    for doc in docs:
        article = repo.to_export(doc)
        if writer is not None:
            writer.writerow({k: _cell(article.get(k)) for k in CSV_FIELDS})
        else:
            out.write(json.dumps(article, ensure_ascii=False, sort_keys=True) + "\n")
        count += 1
    out.flush()
    return count


def _cell(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return value
