"""`gzarchive export`: stored articles to stdout as JSON lines or CSV."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import datetime, timedelta, timezone
from typing import Any

from crawler.cli.common import EXIT_OK, EXIT_USAGE, CliError, add_common, open_reader

BEIJING = timezone(timedelta(hours=8))
CSV_FIELDS = ("url", "title", "published_at", "source", "editor", "chief_editor", "sections",
              "body", "images", "urls", "near_duplicate_of", "first_seen", "last_seen",
              "content_hash", "warc")


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("export", help="write stored articles to stdout")
    parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl",
                        help="one JSON object a line (default) or CSV with a header")
    parser.add_argument("--section", help="only this section (either script); an unknown "
                                          "one is an error listing the known sections")
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


def resolve_section(repo: Any, value: str | None) -> str | None:
    """The stored label ``value`` names (either script, width or case), else CliError
    (usage) listing the known sections: a typo must not look like an empty section."""
    label = section_label(value)
    if label is None:
        return None
    # The kept per-section counts answer this (one document read); a miss asks the
    # (sections, published_at) index, and only then is the list of sections read.
    if repo.count_by_section().get(label) or \
            repo.articles.find_one({"sections": label}, {"_id": 1}) is not None:
        return label
    from crawler.textnorm import fold_label

    known = sorted(str(k) for k in repo.articles.distinct("sections"))
    for name in known:
        if fold_label(name) == fold_label(label):
            return name
    raise CliError(f"unknown section {value!r}; known sections: "
                   f"{', '.join(known) if known else 'none (no articles stored)'}", EXIT_USAGE)


def run(args: argparse.Namespace) -> int:
    if args.since and args.until and args.since >= args.until:
        raise CliError("--since must be before --until", EXIT_USAGE)
    with open_reader(args) as repo:
        docs = repo.find(section=resolve_section(repo, args.section), since=args.since,
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
