"""One crawl, whatever the entry point: `scrapy crawl section` from the project root and
`gzarchive crawl` on the replica with a JavaScript-filled section get the same articles,
print the same summary, record the same `crawl_runs` document and share the run lock."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from crawler.run.exits import EXIT_LOCKED, EXIT_USAGE
from storage.mongo.client import open_database
from storage.mongo.runs import RunRepository
from tests.helpers import ROOT, crawl, export, run_cli

pytestmark = pytest.mark.slow

# Every exported field but the ones that name the run (times, WARC file names).
COMPARED = ("url", "urls", "title", "published_at", "source", "editor", "chief_editor",
            "sections", "body", "images", "near_duplicate_of", "content_hash")
SECTIONS = "老外在貴州|Hi,貴州!"


def scrapy_crawl(portal_url: str, data: Path, *extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    cmd = [sys.executable, "-m", "scrapy", "crawl", "section", "-a", f"section={SECTIONS}",
           "-s", f"PORTAL_URL={portal_url}", "-s", f"DATA_DIR={data}",
           "-s", "AUTOTHROTTLE_ENABLED=False", "-L", "WARNING", *extra]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def runs(data: Path) -> list[dict[str, Any]]:
    with open_database(None, data) as (_client, db):
        return RunRepository(db).last(5)


@pytest.fixture(scope="module")
def both(replica_js: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same replica crawled once by each entry point; a second run tried during the
    `scrapy crawl` one."""
    scrapy_data = tmp_path_factory.mktemp("scrapy")
    proc = scrapy_crawl(replica_js.url, scrapy_data)
    lock = scrapy_data / "state" / "crawl.lock"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and f'"pid": {proc.pid}' not in (
            lock.read_text() if lock.exists() else ""):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    second = run_cli("crawl", "--quiet", "--portal-url", replica_js.url, "--data-dir",
                     str(scrapy_data), timeout=120)
    running_after_second = proc.poll() is None
    out, err = proc.communicate(timeout=600)
    gz_data = tmp_path_factory.mktemp("gzarchive")
    gz = crawl(replica_js.url, gz_data)
    return {"scrapy": subprocess.CompletedProcess(proc.args, proc.returncode, out, err),
            "scrapy_data": scrapy_data, "second": second,
            "running_after_second": running_after_second, "gz": gz, "gz_data": gz_data}


@pytest.fixture(scope="module")
def replica_js() -> Any:
    from tests.replica.config import HI_GZ
    from tests.replica.fixtures import running_replica

    with running_replica(js_section=HI_GZ) as rep:
        yield rep


def test_scrapy_crawl_gets_every_article_gzarchive_gets(both: dict[str, Any],
                                                        replica_js: Any) -> None:
    assert both["scrapy"].returncode == 0, both["scrapy"].stderr[-3000:]
    assert both["gz"].returncode == 0, both["gz"].stderr[-3000:]
    assert "no browser available" not in both["scrapy"].stderr
    via_scrapy = {a["url"]: a for a in export(both["scrapy_data"])}
    via_gz = {a["url"]: a for a in export(both["gz_data"])}
    truth = {t["url"] for t in replica_js.ground_truth()}
    assert sorted(via_gz) == sorted(truth)
    assert sorted(via_scrapy) == sorted(via_gz)
    diffs = [(url, name) for url, article in via_gz.items() for name in COMPARED
             if via_scrapy[url].get(name) != article.get(name)]
    assert not diffs, diffs[:5]
    rendered = {url for url, a in via_scrapy.items() if "Hi,贵州!" in a["sections"]}
    assert rendered, "the JavaScript section was not crawled"


def test_same_summary_and_crawl_runs(both: dict[str, Any]) -> None:
    def summary(text: str) -> list[str]:
        block = text[text.index("== gzarchive crawl summary =="):]
        return [line for line in block.splitlines()
                if line.startswith(("status", "articles", "section", "failures"))]

    assert summary(both["scrapy"].stdout) == summary(both["gz"].stdout)
    line = next(x for x in both["scrapy"].stdout.splitlines() if x.startswith("articles"))
    total, parts = re.match(r"articles\s+: (\d+) extracted = (.*)", line).groups()  # type: ignore[union-attr]
    assert int(total) == sum(int(p.split()[0]) for p in parts.split(" + ")), line
    for data, entry in ((both["scrapy_data"], "scrapy crawl"),
                        (both["gz_data"], "gzarchive crawl")):
        (run,) = runs(data)
        assert run["exit_status"] == 0 and run["status"] == "finished"
        assert run["settings"]["entry_point"] == entry
        assert run["counts"]["new"] == int(total) - run["counts"]["summary"]["sections merged"]


def test_second_run_during_scrapy_crawl_is_locked_out(both: dict[str, Any]) -> None:
    second = both["second"]
    assert second.returncode == EXIT_LOCKED, second.stderr
    assert both["running_after_second"]
    assert second.stderr.strip().splitlines() == [
        line for line in second.stderr.strip().splitlines() if "another crawl holds" in line]
    assert "crawl.lock" in second.stderr


def test_scrapy_crawl_bad_setting_is_exit_2(tmp_path: Path) -> None:
    proc = scrapy_crawl("http://127.0.0.1:9", tmp_path / "d", "-s", "DOWNLOAD_TIMEOUT=abc")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_USAGE, err
    assert "DOWNLOAD_TIMEOUT expects a number" in err and "Traceback" not in err
    assert not (tmp_path / "d").exists()
