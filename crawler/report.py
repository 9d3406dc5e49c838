"""What happened during a crawl, beyond Scrapy's stats: failures by kind with example
URLs, a fatal reason, sections found or needing a browser. The CLI builds the run
summary and the exit code from it; `crawl_runs` stores it."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

EXAMPLES_PER_KIND = 20

# Failure kinds that make a crawl "partial" (exit code 5) rather than merely noted.
SOFT_KINDS = frozenset({"robots-disallowed", "offsite-skipped", "http-404", "http-410"})


@dataclass
class CrawlReport:
    """Mutable record of one crawl, shared by the spider and the pipelines."""

    fatal: str | None = None
    fatal_kind: str | None = None
    sections: dict[str, str] = field(default_factory=dict)          # label -> listing URL
    needs_rendering: dict[str, str] = field(default_factory=dict)   # label -> listing URL
    failures: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    failure_counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    articles_found: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def fail(self, kind: str, url: str, stats: Any | None = None) -> None:
        self.failure_counts[kind] += 1
        if len(self.failures[kind]) < EXAMPLES_PER_KIND and url not in self.failures[kind]:
            self.failures[kind].append(url)
        if stats is not None:
            stats.inc_value(f"portal/failures/{kind}")

    def set_fatal(self, kind: str, message: str) -> None:
        if self.fatal is None:
            self.fatal_kind, self.fatal = kind, message

    @property
    def hard_failures(self) -> dict[str, int]:
        return {k: v for k, v in self.failure_counts.items() if k not in SOFT_KINDS}

    def as_dict(self) -> dict[str, Any]:
        return {
            "fatal": self.fatal,
            "fatal_kind": self.fatal_kind,
            "sections": dict(self.sections),
            "needs_rendering": dict(self.needs_rendering),
            "failures": {k: {"count": self.failure_counts[k], "examples": list(v)}
                         for k, v in self.failures.items()},
            "articles_found": dict(self.articles_found),
        }
