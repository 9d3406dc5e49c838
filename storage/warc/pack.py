"""Package finished WARC files as a WACZ (for ReplayWeb.page) with the ``wacz`` package.

``wacz``'s own page detection finds nothing in our files, so ``pages.jsonl`` is written
here: a header line, then one ``{"url", "ts", "title"?}`` object per page. Pages can
be given (e.g. the articles from MongoDB) or derived from ``index.cdxj``
(:func:`pages_from_index`: every HTML 200 response).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from wacz.main import main as wacz_main

from .errors import WarcError
from .index import INDEX_NAME

PAGES_HEADER = {"format": "json-pages-1.0", "id": "pages", "title": "All Pages"}


def _ts_iso(ts14: str) -> str:
    return datetime.strptime(ts14[:14], "%Y%m%d%H%M%S").strftime("%Y-%m-%dT%H:%M:%SZ")


def pages_from_index(index_path: Path) -> list[dict[str, Any]]:
    """Pages for every ``text/html`` 200 response in a CDXJ index (first capture)."""
    pages: dict[str, dict[str, Any]] = {}
    for line in Path(index_path).read_text(encoding="utf-8").splitlines():
        parts = line.split(" ", 2)
        if len(parts) < 3:
            continue
        data = json.loads(parts[2])
        if data.get("status") != "200" or data.get("mime") != "text/html":
            continue
        url = str(data["url"])
        ts = _ts_iso(parts[1])
        if url not in pages or pages[url]["ts"] > ts:
            pages[url] = {"url": url, "ts": ts}
    return sorted(pages.values(), key=lambda p: (p["ts"], p["url"]))


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

    ``pages`` default: derived from ``warc_dir/index.cdxj`` when it exists.
    """
    warc_dir, out_path = Path(warc_dir), Path(out_path)
    warcs = sorted(str(p) for p in warc_dir.glob("*.warc.gz"))
    if not warcs:
        raise WarcError(f"no finished .warc.gz files in {warc_dir}")
    if pages is None:
        index = warc_dir / INDEX_NAME
        pages = pages_from_index(index) if index.exists() else []
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pages_file = write_pages_jsonl(pages, Path(tmp) / "pages.jsonl")
        args = ["create", "-o", str(out_path), "-p", str(pages_file)]
        if title:
            args += ["--title", title]
        if description:
            args += ["--desc", description]
        code = wacz_main(args + warcs)
    if code not in (0, None) or not out_path.exists():
        raise WarcError(f"wacz create failed with code {code!r}")
    return out_path


def validate_wacz(path: Path) -> bool:
    """Run ``wacz validate`` on a file; True when it passes."""
    return wacz_main(["validate", "-f", str(path)]) in (0, None)
