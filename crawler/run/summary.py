"""The run summary printed at the end of every crawl, and the counts it adds up.

Every item the spider extracted lands in exactly one of :data:`LANDINGS` (read from
the stats); :func:`article_counts` returns them with the total so the printed line is
arithmetic a person can check: ``48 extracted = 46 new + ... + 2 sections merged``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crawler.run.exits import Outcome
from storage.mongo.client import redact

# (label, stats keys added up). An ArticleItem ends new/updated/unchanged/revised or
# spooled; a SectionLinkItem (304, or the same article met in a second section) ends
# unchanged or "sections merged", or not stored when the store refused it.
LANDINGS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("new", ("archive/mongo/new",)),
    ("updated", ("archive/mongo/updated",)),
    ("revised", ("archive/mongo/revised",)),
    ("unchanged", ("archive/mongo/unchanged",)),
    ("sections merged", ("archive/mongo/sections_merged",)),
    ("spooled", ("archive/mongo/spooled",)),
    ("not stored", ("archive/mongo/errors/touch", "archive/mongo/errors/missing-on-touch",
                    "archive/mongo/errors/missing-on-merge",
                    "archive/mongo/errors/section-merge-skipped")),
    ("dropped", ("item_dropped_count",)),
)

SPOOLED_OPS = "archive/mongo/spooled_ops/"


def _int(stats: Mapping[str, Any], key: str) -> int:
    value = stats.get(key, 0)
    return int(value) if isinstance(value, (int, float)) else 0


def article_counts(stats: Mapping[str, Any]) -> dict[str, int]:
    """``{"extracted": n, "new": …, …, "unaccounted": n}`` from Scrapy's stats."""
    counts = {"extracted": _int(stats, "item_scraped_count") + _int(stats, "item_dropped_count")
              + _int(stats, "item_error_count")}
    for label, keys in LANDINGS:
        counts[label] = sum(_int(stats, key) for key in keys)
    if any(key.startswith(SPOOLED_OPS) for key in stats):
        # The store spools operations; only upserts (articles) and touches (section
        # links) are items, relinks and run records are not.
        counts["spooled"] = sum(_int(stats, SPOOLED_OPS + kind) for kind in ("upsert", "touch"))
    counts["failed in a pipeline"] = _int(stats, "item_error_count")
    landed = sum(v for k, v in counts.items() if k != "extracted")
    counts["unaccounted"] = counts["extracted"] - landed
    return counts


def format_summary(outcome: Outcome, report: Any, stats: Mapping[str, Any],
                   settings: Any, log_file: str | None = None) -> str:
    """The summary block (no trailing newline)."""
    get = stats.get
    counts = article_counts(stats)
    status = "ok" if outcome.ok else f"exit {outcome.code} ({outcome.status})"
    if outcome.reason:
        status += f" — {outcome.reason}"
    parts = [f"{counts[label]} {label}" for label, _ in LANDINGS]
    if counts["failed in a pipeline"]:
        parts.append(f"{counts['failed in a pipeline']} failed in a pipeline")
    articles = f"{counts['extracted']} extracted = " + " + ".join(parts)
    if counts["unaccounted"]:
        articles += f"  ({counts['unaccounted']} unaccounted: see the log file)"
    lines = [
        "",
        "== gzarchive crawl summary ==",
        f"status          : {status}",
        f"finish reason   : {get('finish_reason', '?')}",
        f"pages fetched   : {get('downloader/response_count', 0)} "
        f"({get('downloader/response_bytes', 0)} bytes)",
        f"articles        : {articles}",
    ]
    replayed = _int(stats, "archive/mongo/replayed")
    if replayed:
        lines.append(f"spool replayed  : {replayed} article(s) spooled by an earlier run, "
                     "now written to the database")
    resumed = _int(stats, "portal/resumed")
    if resumed:
        lines.append(f"resumed         : {resumed} article(s) pending from an earlier run")
    if report is not None:
        for section, url in report.sections.items():
            lines.append(f"section         : {section} — {report.articles_found.get(section, 0)}"
                         f" articles linked ({url})")
        for section, url in report.needs_rendering.items():
            lines.append(f"NEEDS RENDERING : {section} — listing {url} is filled by "
                         "JavaScript; run with --render auto and Chromium installed")
        if report.failure_counts:
            lines.append("failures        :")
            for kind, count in sorted(report.failure_counts.items()):
                examples = ", ".join(report.failures.get(kind, [])[:3])
                lines.append(f"  {kind:<22} {count:>5}  e.g. {examples}")
        else:
            lines.append("failures        : none")
    archive_errors = {k: v for k, v in stats.items()
                      if k.startswith(("archive/warc/errors/write", "archive/spool/errors"))}
    for key, value in sorted(archive_errors.items()):
        lines.append(f"ARCHIVE ERRORS  : {key} = {value} (data at risk, see the log file)")
    lines.append(f"WARC            : {get('archive/warc/records', 0)} records in "
                 f"{settings.get('WARC_DIR')}")
    uri = settings.get("MONGODB_URI")
    store = redact(uri) if uri else f"embedded SecantusDB under {settings.get('DATA_DIR')}"
    lines.append(f"MongoDB         : {store}")
    if log_file:
        lines.append(f"log file        : {log_file}")
    return "\n".join(lines)


__all__ = ["LANDINGS", "article_counts", "format_summary"]
