"""End to end: a long listing does not pile its articles up in the scheduler.

Listing pages go out below their articles and images (PORTAL_LISTING_PRIORITY), so the
requests waiting at once stay about a page or two per section however long the
listing; the peak is recorded in crawl_runs (``counts.peak_queued``). Every article is
still archived, once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from storage.mongo.client import open_database
from storage.mongo.runs import RunRepository
from tests.helpers import crawl, export

pytestmark = pytest.mark.slow

PER_SECTION = 100
PAGE_SIZE = 5


def test_the_scheduler_holds_a_page_or_two_not_the_listing(
        replica_factory: Any, tmp_path: Path) -> None:
    rep = replica_factory(articles_per_section=PER_SECTION, page_size=PAGE_SIZE)
    proc = crawl(rep.url, tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    articles = export(tmp_path)
    urls = [a["url"] for a in articles]
    assert len(urls) == len(set(urls)), "an article is stored twice"
    target = [a for a in articles if a.get("sections")]
    assert len(target) >= 2 * PER_SECTION, len(target)
    with open_database(None, tmp_path) as (_client, db):
        (run,) = RunRepository(db).last(5)
    peak = run["counts"]["peak_queued"]
    # Per section: a page's articles, their traditional-script twins and images, the
    # next page and its lookahead guesses. The whole listing would be hundreds (332
    # here with listing pages at the articles' priority).
    per_section_page = PAGE_SIZE * 4 + 4
    assert 0 < peak <= 2 * per_section_page, peak
