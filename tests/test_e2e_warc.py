"""End to end: the WARC archive of a crawl of the replica, read back with warcio."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from warcio.archiveiterator import ArchiveIterator

from storage.warc.index import read_index
from tests.helpers import ROOT, crawl, export, run_cli

pytestmark = pytest.mark.slow


def read_records(warc_dir: Path) -> list[dict[str, Any]]:
    records = []
    for path in sorted(warc_dir.glob("*.warc.gz")):
        with path.open("rb") as fh:
            for record in ArchiveIterator(fh):
                headers = record.rec_headers
                payload = record.content_stream().read()
                records.append({
                    "file": path.name,
                    "type": record.rec_type,
                    "uri": headers.get_header("WARC-Target-URI"),
                    "id": headers.get_header("WARC-Record-ID"),
                    "concurrent": headers.get_header("WARC-Concurrent-To"),
                    "profile": headers.get_header("WARC-Profile"),
                    "status": record.http_headers.get_statuscode() if record.http_headers else None,
                    "payload_sha1": hashlib.sha1(payload).hexdigest(),
                    "payload_len": len(payload),
                })
    return records


@pytest.fixture(scope="module")
def archived(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.replica import Replica, ReplicaConfig

    rep = Replica(ReplicaConfig(js_section=None)).start()
    data = tmp_path_factory.mktemp("warc")
    proc = crawl(rep.url, data)
    log = list(rep.log)
    try:
        yield {"rep": rep, "data": data, "proc": proc, "log": log,
               "records": read_records(data / "warc")}
    finally:
        rep.stop()


def test_every_served_request_has_a_pair_with_identical_body(archived: dict[str, Any]) -> None:
    assert archived["proc"].returncode == 0, archived["proc"].stderr[-3000:]
    base = archived["rep"].url
    records = archived["records"]
    responses = {}
    for rec in records:
        if rec["type"] == "response":
            responses.setdefault(rec["uri"], []).append(rec)
    requests = {rec["id"]: rec for rec in records if rec["type"] == "request"}
    by_concurrent = {rec["concurrent"]: rec for rec in records if rec["type"] == "request"}
    missing, different = [], []
    for entry in archived["log"]:
        url = base + entry.path
        candidates = responses.get(url, [])
        if not candidates:
            missing.append(url)
            continue
        if not any(c["payload_sha1"] == entry.body_sha1 for c in candidates):
            different.append(url)
        assert any(by_concurrent.get(c["id"]) or requests.get(c["concurrent"])
                   for c in candidates), f"no request record for {url}"
    assert not missing, missing[:5]
    assert not different, different[:5]
    kinds = Counter(rec["type"] for rec in records)
    assert kinds["warcinfo"] >= 1 and kinds["metadata"] >= 1
    assert any(rec["status"] == "301" for rec in records)
    assert any(rec["uri"].endswith("/robots.txt") for rec in records if rec["uri"])


def test_warc_verify_command_passes(archived: dict[str, Any]) -> None:
    proc = run_cli("warc", "verify", "--data-dir", str(archived["data"]))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert read_index(archived["data"] / "warc" / "index.cdxj")
    assert not list((archived["data"] / "warc").glob("*.open"))


def test_article_points_at_its_response_record(archived: dict[str, Any]) -> None:
    from warcio.archiveiterator import ArchiveIterator as Iter

    articles = export(archived["data"])
    assert articles
    for article in articles[:10]:
        warc = article["warc"]
        path = archived["data"] / "warc" / warc["file"]
        with path.open("rb") as fh:
            fh.seek(warc["offset"])
            record = next(iter(Iter(fh)))
            assert record.rec_type == "response"
            assert record.rec_headers.get_header("WARC-Target-URI") == article["url"]


def test_recrawl_writes_revisits_not_full_responses(archived: dict[str, Any]) -> None:
    data = archived["data"]
    first_size = sum(p.stat().st_size for p in (data / "warc").glob("*.warc.gz"))
    before = {p.name for p in (data / "warc").glob("*.warc.gz")}
    proc = crawl(archived["rep"].url, data)
    assert proc.returncode == 0, proc.stderr[-3000:]
    new_files = [p for p in (data / "warc").glob("*.warc.gz") if p.name not in before]
    second_size = sum(p.stat().st_size for p in new_files)
    records = [r for r in read_records(data / "warc") if r["file"] in {p.name for p in new_files}]
    kinds = Counter(r["type"] for r in records)
    article_responses = [r for r in records if r["type"] == "response"
                         and r["status"] == "200" and "/n/" in (r["uri"] or "")]
    assert kinds["revisit"] > 0
    assert not article_responses, article_responses[:3]
    profiles = {r["profile"] for r in records if r["type"] == "revisit"}
    assert any("server-not-modified" in (p or "") for p in profiles)
    print(f"archive size: first crawl {first_size} bytes, recrawl {second_size} bytes")
    assert second_size < first_size / 2


@pytest.mark.parametrize("kill_at", [3_000, 60_000, 180_000])
def test_sigkill_mid_crawl_then_resume(tmp_path: Path, kill_at: int) -> None:
    """Killed once the open WARC holds *kill_at* bytes; the next run completes the store."""
    from tests.replica import Replica, ReplicaConfig

    rep = Replica(ReplicaConfig(js_section=None)).start()
    try:
        args = [sys.executable, "-m", "crawler", "crawl", "--portal-url", rep.url,
                "--data-dir", str(tmp_path)]
        env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 120
        while time.time() < deadline:
            opened = list((tmp_path / "warc").glob("*.open")) if (tmp_path / "warc").exists() else []
            if opened and opened[0].stat().st_size > kill_at:
                break
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert list((tmp_path / "warc").glob("*.open")), "the kill came too late to test"
        resumed = crawl(rep.url, tmp_path)
        assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
        assert not list((tmp_path / "warc").glob("*.open"))
        verify = run_cli("warc", "verify", "--data-dir", str(tmp_path))
        assert verify.returncode == 0, verify.stdout[-2000:]
        got = {a["url"]: a for a in export(tmp_path)}
        truth = {t["url"]: t for t in rep.ground_truth()}
        assert set(got) == set(truth)
        assert all(got[u]["body"] == truth[u]["body"] for u in truth)
    finally:
        rep.stop()
