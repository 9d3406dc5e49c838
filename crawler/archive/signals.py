"""Signals of the archive layer, and the one call a spider makes.

A spider that has parsed an article page asks for a ``metadata`` record listing the
page's outlinks with::

    from crawler.archive.signals import archive_outlinks
    archive_outlinks(self.crawler, response.url, [link1, link2, ...])

The record is written at once (so a crash loses none), with WARC-Concerning set to the
page's response/revisit record when the page was archived in this crawl or before.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# kwargs: url (str), outlinks (list[str])
outlinks_found = object()


def archive_outlinks(crawler: Any, url: str, outlinks: Iterable[str]) -> None:
    """Ask the WARC archive (if enabled) for a metadata record of ``url``'s outlinks."""
    crawler.signals.send_catch_log(signal=outlinks_found, url=url, outlinks=list(outlinks))
