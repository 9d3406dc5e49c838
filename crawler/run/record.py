"""The ``crawl_runs`` document of a crawl: its settings, counts, failures and exit code."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from crawler.run.exits import Outcome
from crawler.run.summary import article_counts

logger = logging.getLogger(__name__)


def run_settings(settings: Any, entry: str) -> dict[str, Any]:
    """The settings a person asks about later (what was crawled, how, from where)."""
    return {
        "entry_point": entry,
        "portal_url": settings.get("PORTAL_URL"),
        "sections": settings.getlist("PORTAL_SECTIONS"),
        "all": settings.getbool("PORTAL_ALL_SECTIONS"),
        "render": settings.get("PORTAL_RENDER"),
        "max_articles": settings.getint("PORTAL_MAX_ARTICLES"),
        "data_dir": settings.get("DATA_DIR"),
        # fleet mode: which worker of which frontier (None: a single process)
        "worker": settings.get("FLEET_WORKER_ID") if settings.get("FLEET_REDIS_URL") else None,
        "frontier": settings.get("FLEET_NAME") if settings.get("FLEET_REDIS_URL") else None,
        "role": settings.get("FLEET_ROLE") if settings.get("FLEET_REDIS_URL") else None,
    }


def run_counts(stats: dict[str, Any]) -> dict[str, Any]:
    """Counts of the run: every ``archive/mongo/*`` stat, pages, items and WARC records."""
    counts: dict[str, Any] = {key.split("/", 2)[-1]: value for key, value in stats.items()
                              if key.startswith("archive/mongo/") and isinstance(value, int)}
    counts.update({
        "pages": stats.get("downloader/response_count", 0),
        "articles": stats.get("item_scraped_count", 0),
        "warc_records": stats.get("archive/warc/records", 0),
        "peak_queued": stats.get("scheduler/peak_queued", 0),  # crawler/queuepeak.py
        "summary": article_counts(stats),
    })
    return counts


def record_run(settings: Any, entry: str, started: datetime, stats: dict[str, Any],
               report: Any, outcome: Outcome, *, reachable: bool = True) -> bool:
    """Store the run in ``crawl_runs``; when the store is down (or known to be down:
    ``reachable`` False) the document is spooled and the next run writes it. False (and
    one log line) when it was not written now."""
    from storage.mongo.ops import Op
    from storage.mongo.record import write_or_spool
    from storage.mongo.runs import RunRepository

    errors: dict[str, Any] = {}
    if report is not None:
        summary = report.as_dict()
        errors = dict(summary["failures"]) | {"fatal": summary["fatal"],
                                               "needs_rendering": summary["needs_rendering"]}
    errors["exit_reason"] = outcome.reason
    doc = RunRepository.document(run_settings(settings, entry), started, run_counts(stats),
                                 errors, outcome.code)
    written = write_or_spool([Op.run(doc)], settings.get("MONGODB_URI") or None,
                             Path(settings.get("DATA_DIR", "data")),
                             db_name=settings.get("MONGODB_DATABASE", "gzarchive"),
                             try_store=reachable,
                             write_concern=settings.get("MONGODB_WRITE_CONCERN") or None)
    if written.spooled:
        logger.warning("run not recorded in crawl_runs yet (exit %d): spooled, written by "
                       "the next run", outcome.code)
    elif written.lost:
        logger.error("run not recorded in crawl_runs (exit %d): neither written nor spooled",
                     outcome.code)
    return bool(written.written)


__all__ = ["record_run", "run_counts", "run_settings"]
