"""Package finished WARC files as a WACZ (for ReplayWeb.page) with the ``wacz`` package.

``wacz``'s own page detection finds nothing in our files, so ``pages.jsonl`` is written
here: a header line, then one ``{"url", "ts", "title"?}`` object per page. Pages can
be given (e.g. the articles from MongoDB) or derived from the replay index
(``index.cdxj`` and its segments, :func:`pages_from_index`: every HTML page that had a
200 response, at its latest capture).

The WACZ's own index follows the rule of ``index.cdxj`` (storage/warc/index.py,
:func:`~storage.warc.index.replayable`: no 304 revisits), so ReplayWeb.page resolves
an unchanged page to its newest copy with content, as pywb does. ``wacz`` prints its
progress on stdout; that goes to the debug log here.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import tempfile
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any
from unittest import mock

import wacz.main
from wacz.waczindexer import WACZIndexer

from .errors import WarcError
from .index import INDEX_NAME, has_index, iter_index, replayable

logger = logging.getLogger(__name__)


class _ReplayWACZIndexer(WACZIndexer):  # type: ignore[misc]
    """wacz's indexer, minus the records :func:`replayable` rejects."""

    def filter_record(self, record: Any) -> bool:
        return bool(super().filter_record(record)) and replayable(record)


def _wacz(args: list[str]) -> object:
    """Run the ``wacz`` command line in-process, quietly, with our index rule.

    ``wacz create`` builds its indexer from the module-level name ``WACZIndexer`` and
    offers no option to filter records; patching that name for the call is the one
    seam it has (wacz 0.6, pinned)."""
    out = io.StringIO()
    with mock.patch.object(wacz.main, "WACZIndexer", _ReplayWACZIndexer), \
            contextlib.redirect_stdout(out):
        code = wacz.main.main(args)
    for line in out.getvalue().splitlines():
        logger.debug("wacz: %s", line)
    return code

PAGES_HEADER = {"format": "json-pages-1.0", "id": "pages", "title": "All Pages"}


def _ts_iso(ts14: str) -> str:
    return datetime.strptime(ts14[:14], "%Y%m%d%H%M%S").strftime("%Y-%m-%dT%H:%M:%SZ")


def pages_from_index(index_path: Path) -> list[dict[str, Any]]:
    """A page for every URL with a ``text/html`` 200 response in a CDXJ index (its
    main ``index_path`` and segments, storage/warc/index.py), at its
    latest 200 capture (a response, or an identical-payload revisit of one), so that
    ReplayWeb.page opens the newest copy."""
    html: set[str] = set()
    latest: dict[str, str] = {}
    for line in iter_index(Path(index_path)):
        parts = line.split(" ", 2)
        if len(parts) < 3:
            continue
        data = json.loads(parts[2])
        if data.get("status") != "200" or "url" not in data:
            continue
        url = str(data["url"])
        if data.get("mime") == "text/html":
            html.add(url)
        elif data.get("mime") != "warc/revisit":
            continue
        ts = _ts_iso(parts[1])
        latest[url] = max(latest.get(url, ts), ts)
    pages = [{"url": url, "ts": latest[url]} for url in html]
    return sorted(pages, key=lambda p: (p["ts"], p["url"]))


def write_pages_jsonl(pages: Iterable[dict[str, Any]], path: Path) -> Path:
    """Write a ``pages.jsonl`` (header line first) and return its path."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(PAGES_HEADER) + "\n")
        for page in pages:
            if "url" not in page:
                raise ValueError(f"page without url: {page!r}")
            fh.write(json.dumps(page, ensure_ascii=False) + "\n")
    return path


def pack_wacz(warc_dir: Path, out_path: Path, pages: list[dict[str, Any]] | None = None,
              *, title: str | None = None, description: str | None = None) -> Path:
    """Build ``out_path`` (.wacz) from every finished ``*.warc.gz`` in ``warc_dir``.

    ``pages`` default: derived from the replay index of ``warc_dir`` when it exists. The
    WACZ's own index is built here from the WARC files (one sorted CDXJ, gzipped).
    """
    warc_dir, out_path = Path(warc_dir), Path(out_path)
    warcs = sorted(str(p) for p in warc_dir.glob("*.warc.gz"))
    if not warcs:
        raise WarcError(f"no finished .warc.gz files in {warc_dir}")
    if pages is None:
        index = warc_dir / INDEX_NAME
        pages = pages_from_index(index) if has_index(index) else []
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pages_file = write_pages_jsonl(pages, Path(tmp) / "pages.jsonl")
        args = ["create", "-o", str(out_path), "-p", str(pages_file)]
        if title:
            args += ["--title", title]
        if description:
            args += ["--desc", description]
        code = _wacz(args + warcs)
    if code not in (0, None) or not out_path.exists():
        raise WarcError(f"wacz create failed with code {code!r}")
    return out_path


def validate_wacz(path: Path) -> bool:
    """Run ``wacz validate`` on a file; True when it passes."""
    return _wacz(["validate", "-f", str(path)]) in (0, None)
