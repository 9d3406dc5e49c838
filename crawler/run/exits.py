"""Exit codes of a crawl: the one function that decides them, and their meanings.

`decide(report, stats, reason)` is used by every entry point (`gzarchive crawl`,
`scrapy crawl`, an embedding script through :class:`crawler.run.CrawlLifecycle`), so the
code printed, returned and stored in ``crawl_runs`` is always the same. The README's
"Exit codes" table lists the same codes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

EXIT_OK = 0
EXIT_ERROR = 1            # unexpected internal error (traceback in the log file)
EXIT_USAGE = 2            # bad arguments or settings, unusable data directory
EXIT_UNREACHABLE = 3      # the portal could not be reached
EXIT_SECTION = 4          # section not found / needs a browser that is not allowed
EXIT_PARTIAL = 5          # the crawl finished, some URLs failed (listed)
EXIT_LOCKED = 6           # another crawl holds the lock on the data directory
EXIT_STORE = 7            # the database could not be reached (articles spooled)
EXIT_ARCHIVE = 8          # WARC or spool writes failed: data at risk
EXIT_INTERRUPTED = 130    # SIGINT / SIGTERM

MEANINGS: dict[int, str] = {
    EXIT_OK: "ok",
    EXIT_ERROR: "internal error",
    EXIT_USAGE: "bad arguments or settings",
    EXIT_UNREACHABLE: "portal unreachable",
    EXIT_SECTION: "section not found or needs a browser",
    EXIT_PARTIAL: "partial",
    EXIT_LOCKED: "locked",
    EXIT_STORE: "database unreachable",
    EXIT_ARCHIVE: "archive write failure",
    EXIT_INTERRUPTED: "interrupted",
}

# finish_reason values of a crawl that ran to its planned end.
NORMAL_REASONS = frozenset({"finished", "closespider_itemcount", "closespider_pagecount"})
INTERRUPT_REASONS = frozenset({"shutdown", "interrupted"})

# Stats that mean something the crawl fetched may not have been kept.
ARCHIVE_ERROR_KEYS = ("archive/warc/errors/write", "archive/spool/errors")


@dataclass(frozen=True)
class Outcome:
    """A crawl's exit code, the word for it, and one line saying why (None when ok)."""

    code: int
    reason: str | None = None

    @property
    def status(self) -> str:
        return MEANINGS.get(self.code, f"exit {self.code}")

    @property
    def ok(self) -> bool:
        return self.code == EXIT_OK


def decide(report: Any, stats: Mapping[str, Any], finish_reason: str | None) -> Outcome:
    """The exit code of a finished (or interrupted) crawl.

    *report* is the spider's :class:`crawler.report.CrawlReport` (None when the spider
    never started), *stats* Scrapy's stats, *finish_reason* the spider's close reason.
    Order: data at risk (8), database (7), portal (3), section (4), interrupted (130),
    partial (5). A worse condition is never hidden by a milder one.
    """
    get = stats.get
    fatal_kind = getattr(report, "fatal_kind", None)
    fatal = getattr(report, "fatal", None)
    archive_errors = sum(int(get(key, 0) or 0) for key in ARCHIVE_ERROR_KEYS)
    if archive_errors or finish_reason == "warc_write_error":
        what = ", ".join(f"{key} = {get(key)}" for key in ARCHIVE_ERROR_KEYS if get(key))
        return Outcome(EXIT_ARCHIVE, "archive write failure, data at risk"
                       + (f" ({what})" if what else " (the WARC file could not be written)"))
    spooled = int(get("archive/mongo/spooled", 0) or 0)
    if fatal_kind == "store-unavailable" or get("archive/mongo/errors/unavailable") or spooled:
        where = f"{spooled} article(s) spooled, replayed by the next run"
        if fatal_kind != "store-unavailable":
            return Outcome(EXIT_STORE, f"database writes failed; {where}")
        said = str(fatal or "")
        if not said.startswith("database unreachable"):
            said = "database unreachable" + (f": {said}" if said else "")
        return Outcome(EXIT_STORE, f"{said}; {where}")
    if fatal_kind == "portal-unreachable":
        return Outcome(EXIT_UNREACHABLE, fatal)
    needs = getattr(report, "needs_rendering", None) or {}
    if fatal_kind == "section-not-found":
        return Outcome(EXIT_SECTION, fatal)
    if needs:
        return Outcome(EXIT_SECTION, "section(s) " + ", ".join(needs) + " need a browser "
                       "(--render auto with Chromium installed)")
    if finish_reason in INTERRUPT_REASONS:
        return Outcome(EXIT_INTERRUPTED, "interrupted (SIGINT/SIGTERM): the crawl stopped "
                       "early; the next run resumes it")
    if report is None:
        return Outcome(EXIT_ERROR, "the crawl did not start (see the log file)")
    hard = dict(getattr(report, "hard_failures", {}) or {})
    errors = int(sum(v for k, v in stats.items()
                     if k.startswith("spider_exceptions/") and isinstance(v, int)))
    if finish_reason not in NORMAL_REASONS and finish_reason is not None:
        return Outcome(EXIT_PARTIAL, f"the crawl stopped early ({finish_reason})")
    if hard or errors:
        parts = [f"{count} {kind}" for kind, count in sorted(hard.items())]
        if errors:
            parts.append(f"{errors} callback error(s), see the log file")
        return Outcome(EXIT_PARTIAL, "partial crawl: " + ", ".join(parts))
    return Outcome(EXIT_OK)


__all__ = ["EXIT_ARCHIVE", "EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_LOCKED", "EXIT_OK",
           "EXIT_PARTIAL", "EXIT_SECTION", "EXIT_STORE", "EXIT_UNREACHABLE", "EXIT_USAGE",
           "MEANINGS", "Outcome", "decide"]
