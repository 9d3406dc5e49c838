"""End to end: `gzarchive warc recover` (and any recovery) during a live crawl refuses or
leaves the live writer's file alone; the crawl ends with every file closed, verifying
and indexed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from storage.warc.index import read_index
from storage.warc.recovery import recover_open_files
from tests.helpers import ROOT, run_cli

pytestmark = pytest.mark.slow


def _indexable(record: object) -> bool:
    """What the replay index holds (storage/warc/index.py): responses, resources and
    revisits other than 304s; not warcinfo, requests, metadata fields or conversions."""
    rec_type = record.rec_type  # type: ignore[attr-defined]
    if rec_type == "revisit":
        return str(record.http_headers.get_statuscode()) != "304"  # type: ignore[attr-defined]
    return bool(rec_type in ("response", "resource"))


def test_recover_during_a_crawl_refuses_and_the_crawl_closes_every_file(
        replica_factory: object, tmp_path: Path) -> None:
    rep = replica_factory()  # type: ignore[operator]
    warc_dir = tmp_path / "warc"
    args = [sys.executable, "-m", "crawler", "crawl", "--portal-url", rep.url,
            "--data-dir", str(tmp_path), "--set", "AUTOTHROTTLE_ENABLED=False",
            "--set", "CONCURRENT_REQUESTS_PER_DOMAIN=1", "--set", "DOWNLOAD_DELAY=0.05",
            # several files close (and are indexed) during the crawl
            "--set", "WARC_MAX_SIZE=60000"]
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    crawl = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        opened: list[Path] = []
        while time.monotonic() < deadline and crawl.poll() is None:
            opened = list(warc_dir.glob("*.open")) if warc_dir.exists() else []
            if opened and opened[0].stat().st_size > 3_000:
                break
            time.sleep(0.05)
        assert opened and crawl.poll() is None, "the crawl ended before the test could run"

        refused = run_cli("warc", "recover", "--data-dir", str(tmp_path))
        assert refused.returncode == 6, refused.stdout + refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and f"pid {crawl.pid}" in lines[0], refused.stderr

        # Recovery that skips the run lock (start-up recovery of another process in the
        # same WARC directory) must still leave the live writer's file alone.
        live = [p for p in warc_dir.glob("*.open")]
        sizes = {p: p.stat().st_size for p in live}
        reports = recover_open_files(warc_dir)
        assert reports and all(r.action == "in-use" for r in reports), reports
        for path, size in sizes.items():
            assert not path.exists() or path.stat().st_size >= size  # finished, or grown

        out, err = crawl.communicate(timeout=300)
    finally:
        if crawl.poll() is None:
            crawl.kill()
            crawl.wait()
    assert crawl.returncode == 0, out[-2000:] + err[-3000:]
    assert not list(warc_dir.glob("*.open"))
    verify = run_cli("warc", "verify", "--data-dir", str(tmp_path))
    assert verify.returncode == 0, verify.stdout[-3000:]

    files = sorted(warc_dir.glob("*.warc.gz"))
    assert len(files) > 2, "expected the crawl to rotate through several files"
    indexed: Counter[str] = Counter()
    for line in read_index(warc_dir / "index.cdxj"):  # main and segments
        key, _ts, blob = line.split(" ", 2)
        if key != "-":  # warcinfo lines, when cdxj-indexer lists them
            indexed[json.loads(blob)["filename"]] += 1
    for path in files:
        with path.open("rb") as fh:
            expected = sum(1 for record in ArchiveIterator(fh) if _indexable(record))
        assert indexed[path.name] == expected, (path.name, indexed[path.name], expected)
    assert set(indexed) == {p.name for p in files}
