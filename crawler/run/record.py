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
    }


def run_counts(stats: dict[str, Any]) -> dict[str, Any]:
    """Counts of the run: every ``archive/mongo/*`` stat, pages, items and WARC records."""
    counts: dict[str, Any] = {key.split("/", 2)[-1]: value for key, value in stats.items()
                              if key.startswith("archive/mongo/") and isinstance(value, int)}
    counts.update({
        "pages": stats.get("downloader/response_count", 0),
        "articles": stats.get("item_scraped_count", 0),
        "warc_records": stats.get("archive/warc/records", 0),
        "summary": article_counts(stats),
    })
    return counts


def record_run(settings: Any, entry: str, started: datetime, stats: dict[str, Any],
               report: Any, outcome: Outcome) -> bool:
    """Store the run in ``crawl_runs``; False (and one log line) when the store is down."""
    from pymongo.errors import PyMongoError

    from storage.mongo.client import open_database
    from storage.mongo.errors import StoreUnavailable
    from storage.mongo.runs import RunRepository

    errors: dict[str, Any] = {}
    if report is not None:
        summary = report.as_dict()
        errors = dict(summary["failures"]) | {"fatal": summary["fatal"],
                                               "needs_rendering": summary["needs_rendering"]}
    errors["exit_reason"] = outcome.reason
    uri = settings.get("MONGODB_URI") or None
    try:
        with open_database(uri, Path(settings.get("DATA_DIR", "data")),
                           db_name=settings.get("MONGODB_DATABASE", "gzarchive")) as (_c, db):
            runs = RunRepository(db)
            run_id = runs.start(run_settings(settings, entry), now=started)
            runs.finish(run_id, counts=run_counts(stats), errors=errors,
                        exit_status=outcome.code)
    except (StoreUnavailable, PyMongoError) as exc:
        logger.warning("run not recorded in crawl_runs (exit %d): %s", outcome.code, exc)
        return False
    return True


__all__ = ["record_run", "run_counts", "run_settings"]
