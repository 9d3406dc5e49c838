"""End to end: MongoDB as the place people query the archive (CLI over a crawled store)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from tests.helpers import ROOT, crawl, export, run_cli
from tests.mongo_fixtures import store_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(replica: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    data = tmp_path_factory.mktemp("store")
    proc = crawl(replica.url, data)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"data": data, "export": export(data)}


def _query(data: Path, *args: str) -> list[dict[str, Any]]:
    proc = run_cli("query", "--data-dir", str(data), "--format", "jsonl", "--limit", "0", *args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def test_search_either_script_finds_the_same_articles(store: dict[str, Any]) -> None:
    simplified = _query(store["data"], "--search", "贵州")
    traditional = _query(store["data"], "--search", "貴州")
    assert simplified and {a["url"] for a in simplified} == {a["url"] for a in traditional}
    expected = {a["url"] for a in store["export"] if "贵州" in a["title"] + a["body"]}
    assert {a["url"] for a in simplified} == expected


def test_search_traditional_text_from_seed(store: dict[str, Any]) -> None:
    # The seed story is stored in simplified script; search it with traditional words.
    hits = _query(store["data"], "--search", "國際友好城市 綠色發展")
    assert any("国际友好城市" in a["title"] for a in hits)


def test_query_filters_and_table(store: dict[str, Any]) -> None:
    lw = _query(store["data"], "--section", "老外在貴州")
    assert lw and all("老外在贵州" in a["sections"] for a in lw)
    recent = _query(store["data"], "--since", "2025-07-10")
    assert recent and all(a["published_at"] >= "2025-07-10" for a in recent)
    table = run_cli("query", "--data-dir", str(store["data"]), "--search", "贵州", "--limit", "3")
    assert table.returncode == 0 and "article(s)" in table.stdout
    hidden = _query(store["data"], "--hide-near-duplicates")
    assert len(hidden) < len(store["export"])
    assert all(not a["near_duplicate_of"] for a in hidden)


def test_show_and_stats(store: dict[str, Any]) -> None:
    article = store["export"][0]
    shown = run_cli("show", article["urls"][-1], "--data-dir", str(store["data"]), "--json")
    assert shown.returncode == 0, shown.stderr[-2000:]
    payload = json.loads(shown.stdout)
    assert payload["article"]["url"] == article["url"]
    stats = run_cli("stats", "--data-dir", str(store["data"]))
    assert stats.returncode == 0, stats.stderr[-2000:]
    assert "老外在贵州" in stats.stdout and "Last crawl runs" in stats.stdout


def test_query_while_a_crawl_runs_on_the_embedded_store(replica: Any, tmp_path: Path) -> None:
    first = crawl(replica.url, tmp_path, "--max-articles", "5")
    assert first.returncode == 0, first.stderr[-2000:]
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    running = subprocess.Popen(
        [sys.executable, "-m", "crawler", "crawl", "--portal-url", replica.url, "--data-dir",
         str(tmp_path)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        answers = []
        deadline = time.time() + 60
        while running.poll() is None and time.time() < deadline and len(answers) < 3:
            proc = run_cli("query", "--data-dir", str(tmp_path), "--format", "jsonl")
            assert proc.returncode == 0, proc.stderr[-2000:]
            answers.append(len(proc.stdout.splitlines()))
        out, err = running.communicate(timeout=300)
    finally:
        if running.poll() is None:
            running.kill()
    assert running.returncode == 0, err[-3000:]
    assert answers and answers[0] >= 5
    assert len(export(tmp_path)) == len(replica.ground_truth())
    # the embedded server stops once the last user is gone
    deadline = time.time() + 30
    while (tmp_path / "db" / "server.json").exists() and time.time() < deadline:
        time.sleep(0.5)
    assert not (tmp_path / "db" / "server.json").exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_database_stopped_mid_crawl_loses_nothing(replica: Any, tmp_path: Path) -> None:
    if os.environ.get("MONGODB_URI"):
        pytest.skip("needs a server the test can stop")
    port = _free_port()
    storage = tmp_path / "mongo"

    def server() -> Any:
        srv = store_server(str(storage), port)  # restarted where the crawl's client looks
        srv.start()
        return srv

    srv = server()
    # The crawl runs at the project's settings (MONGODB_BATCH_SIZE, MONGODB_RETRIES, the
    # throttle); only the store is the test's: its URI's 1 s server selection makes each
    # write attempt on the stopped server fail in 1 s instead of 5.
    uri = f"mongodb://127.0.0.1:{port}/?directConnection=true&serverSelectionTimeoutMS=1000"
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    args = [sys.executable, "-m", "crawler", "crawl", "--portal-url", replica.url,
            "--data-dir", str(tmp_path / "data"), "--mongodb-uri", uri]
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    client: MongoClient[dict[str, Any]] = MongoClient(uri)
    deadline = time.time() + 120
    while time.time() < deadline:
        if client["gzarchive"]["articles"].count_documents({}) >= 6:
            break
        time.sleep(0.2)
    client.close()
    srv.stop()
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 7, out[-2000:] + err[-2000:]  # database unreachable, spooled
    assert "spooled" in out
    spool = tmp_path / "data" / "spool" / "articles.jsonl"
    assert spool.exists() and spool.stat().st_size > 0
    srv = server()
    try:
        again = crawl(replica.url, tmp_path / "data", mongodb_uri=uri)
        assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
        client = MongoClient(uri)
        urls = [d["url"] for d in client["gzarchive"]["articles"].find({}, {"url": 1})]
        client.close()
        truth = {t["url"] for t in replica.ground_truth()}
        assert sorted(urls) == sorted(truth)
    finally:
        srv.stop()
