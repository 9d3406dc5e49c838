"""End to end: the embedded store's server killed (SIGKILL) mid-crawl loses no write.

A crawl of the replica (stories listed in both sections, republished stories that are
near-duplicates) has its database server killed at several points: before the first
flush, and once 10 and 30 articles are stored (batches of 10 here, so that a 46-article
crawl has flushes to kill between; one retry, so that the outage costs seconds, not
half a minute). The crawl goes on, spooling; the next run replays the spool and
finishes. Then every exported field of every article, sections and ``near_duplicate_of``
included, must equal a clean crawl's (timestamps and WARC pointers aside), and the
clean crawl must equal the replica's ground truth.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from tests.helpers import ROOT, crawl, export
from tests.replica.fixtures import running_replica
from tests.replica.replica import Replica

pytestmark = pytest.mark.slow

#: Exported fields that differ between two correct crawls.
VOLATILE = ("first_seen", "last_seen", "warc")
SETTINGS = ("--set", "MONGODB_BATCH_SIZE=10", "--set", "MONGODB_RETRIES=1")
#: Fields the replica's ground truth gives.
TRUTH_FIELDS = ("title", "published_at", "source", "editor", "chief_editor", "sections",
                "body", "images", "near_duplicate_of")


@pytest.fixture(scope="module")
def site() -> Iterator[Replica]:
    with running_replica(js_section=None) as rep:
        yield rep


@pytest.fixture(scope="module")
def clean(site: Replica, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The baseline: one uninterrupted crawl, exported."""
    if os.environ.get("MONGODB_URI"):
        pytest.skip("kills the embedded store's server")
    data = tmp_path_factory.mktemp("clean")
    proc = crawl(site.url, data, *SETTINGS)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    rows = {a["url"]: a for a in export(data)}
    # The baseline itself is right: it equals the replica's ground truth.
    truth = {t["url"]: t for t in site.ground_truth()}
    assert sorted(rows) == sorted(truth)
    wrong = [(url, name, rows[url][name], t[name]) for url, t in truth.items()
             for name in TRUTH_FIELDS if rows[url][name] != t[name]]
    assert not wrong, wrong[:4]
    assert any(len(a["sections"]) == 2 for a in rows.values())
    assert sum(1 for a in rows.values() if a["near_duplicate_of"]) == 2
    return rows


def _server_state(data: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((data / "db" / "server.json").read_text())
    except (OSError, ValueError):
        return None
    return state


def _kill_server_when(data: Path, proc: subprocess.Popen[str], stored: int) -> int:
    """SIGKILL the embedded server once ``stored`` articles are in it (0: once the crawl
    is checking articles, before any is stored); returns how many were stored then."""
    deadline = time.monotonic() + 120
    client: MongoClient[dict[str, Any]] | None = None
    try:
        while time.monotonic() < deadline:
            assert proc.poll() is None, "the crawl ended before the kill point"
            state = _server_state(data)
            if state is None:
                time.sleep(0.05)
                continue
            if client is None:
                client = MongoClient(state["uri"], serverSelectionTimeoutMS=2000)
            db = client["gzarchive"]
            count = db["articles"].count_documents({})
            if (count >= stored if stored else db["neardup_sigs"].estimated_document_count()):
                os.kill(int(state["pid"]), signal.SIGKILL)
                return count
            time.sleep(0.05)
    finally:
        if client is not None:
            client.close()
    raise AssertionError(f"{stored} articles never stored")


def _differences(clean: dict[str, dict[str, Any]],
                 got: dict[str, dict[str, Any]]) -> list[tuple[str, str, Any, Any]]:
    wrong = [(url, "missing", None, None) for url in sorted(set(clean) - set(got))]
    wrong += [(url, "extra", None, None) for url in sorted(set(got) - set(clean))]
    for url in sorted(set(clean) & set(got)):
        for name, value in clean[url].items():
            if name not in VOLATILE and got[url].get(name) != value:
                wrong.append((url, name, got[url].get(name), value))
    return wrong


@pytest.mark.parametrize("stored", [0, 10, 30])
def test_database_killed_mid_crawl_then_next_run_equals_a_clean_crawl(
        site: Replica, clean: dict[str, dict[str, Any]], tmp_path: Path, stored: int) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "crawler", "crawl", "--portal-url", site.url, "--data-dir",
         str(tmp_path), "--set", "AUTOTHROTTLE_ENABLED=False", "--set", "DOWNLOAD_DELAY=0.05",
         *SETTINGS],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        at = _kill_server_when(tmp_path, proc, stored)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert at < len(clean), "killed after the crawl had stored everything"
    assert proc.returncode != 0, out[-2000:]
    again = crawl(site.url, tmp_path, *SETTINGS)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    got = {a["url"]: a for a in export(tmp_path)}
    wrong = _differences(clean, got)
    assert not wrong, (f"{len({w[0] for w in wrong})} of {len(clean)} articles wrong "
                       f"(killed at {at} stored): {wrong[:4]}")
