"""End to end: many workers (subprocesses) on one Redis frontier and one MongoDB.

``gzarchive crawl --redis-url`` seeds the frontier and works, ``gzarchive worker``
processes join; the replica (both target sections, plain HTML listings) logs every
request it serves. Checked: each URL fetched once across the fleet, every article
stored once with its sections, the WARC files of all workers together hold every
exchange and their merged CDXJ index finds an article's record; a worker killed
(SIGKILL) mid-crawl loses nothing and ``frontier status`` shows what was reclaimed;
the per-host delay holds for the fleet, not per worker.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from pymongo import MongoClient
from warcio.archiveiterator import ArchiveIterator

from crawler import rendering
from tests.helpers import ROOT, export, run_cli
from tests.redis_fixtures import frontier_name, redis_client, redis_url  # noqa: F401
from tests.replica.fixtures import running_replica
from tests.replica.replica import Replica
from tests.replica.server import ARTICLE, LogEntry

pytestmark = [pytest.mark.slow]

LEASE = 3  # seconds: a killed worker's requests are reclaimed this long after it died
FAST = ("--set", "AUTOTHROTTLE_ENABLED=False", "--set", f"FLEET_LEASE_SECONDS={LEASE}",
        "--set", "PROGRESS_INTERVAL=2")


@pytest.fixture(scope="module")
def fleet_replica() -> Iterator[Replica]:
    with running_replica(js_section=None) as rep:
        yield rep


@pytest.fixture
def mongo(tmp_path: Path) -> Iterator[str]:
    """A MongoDB of its own (SecantusDB server) for each fleet test."""
    uri = os.environ.get("MONGODB_URI")
    if uri:
        pytest.skip("the fleet tests start their own store per test")
    from secantus import SecantusDBServer

    server = SecantusDBServer(storage_path=str(tmp_path / "mongo"), sync_on_commit=True,
                              replica_set_name=None)
    server.start()
    try:
        yield f"{server.uri.rstrip('/')}/?directConnection=true"
    finally:
        server.stop()


def _start(command: str, rep: Replica, data: Path, redis_url: str, name: str,  # noqa: F811
           mongo: str, *extra: str) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "crawler", command, "--data-dir", str(data),
            "--redis-url", redis_url, "--frontier", name, "--mongodb-uri", mongo, *FAST,
            *extra]
    if command == "crawl":
        args += ["--portal-url", rep.url]
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _fleet(rep: Replica, data: Path, redis_url: str, name: str, mongo: str,  # noqa: F811
           workers: int, *extra: str, seed: tuple[str, ...] = ()) -> list[subprocess.Popen[str]]:
    """The seeding crawl (options *seed* of its own), then *workers* workers once the
    frontier is seeded."""
    client = redis.Redis.from_url(redis_url)
    procs = [_start("crawl", rep, data, redis_url, name, mongo, *extra, *seed)]
    deadline = time.time() + 60
    while not client.exists(f"gzarchive:{name}:config"):
        assert procs[0].poll() is None, procs[0].communicate()
        assert time.time() < deadline, "the crawl never seeded the frontier"
        time.sleep(0.05)
    procs += [_start("worker", rep, data, redis_url, name, mongo, *extra)
              for _ in range(workers)]
    return procs


def _finish(procs: list[subprocess.Popen[str]], timeout: float = 240) -> list[str]:
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, (proc.args[3], out[-2000:], err[-3000:])
        outs.append(out + err)
    return outs


def _fetched(log: list[LogEntry]) -> Counter[str]:
    """Paths served, robots.txt aside (checked on its own: once per fleet)."""
    return Counter(e.path for e in log if e.path != "/robots.txt")


def _warc_exchanges(data: Path) -> dict[str, list[tuple[str, str]]]:
    """WARC file -> (target URI, record type) of its response/revisit records."""
    out: dict[str, list[tuple[str, str]]] = {}
    for path in sorted((data / "warc").glob("*.warc.gz")):
        with path.open("rb") as fh:
            out[path.name] = [(r.rec_headers.get_header("WARC-Target-URI"), r.rec_type)
                              for r in ArchiveIterator(fh)
                              if r.rec_type in ("response", "revisit")]
    return out


def _check_store(rep: Replica, data: Path, mongo: str) -> list[dict[str, Any]]:
    articles = export(data, mongodb_uri=mongo)
    urls = [a["url"] for a in articles]
    assert len(urls) == len(set(urls)), "an article is stored twice"
    truth = {t["url"]: t for t in rep.ground_truth()}
    assert sorted(set(truth) - set(urls)) == [], "articles missing"
    assert sorted(set(urls) - set(truth)) == []
    for article in articles:
        want = truth[article["url"]]
        assert article["sections"] == sorted(want["sections"]), article["url"]
        assert article["title"] == want["title"]
        assert article["body"] == want["body"]
    return articles


def _replay(data: Path, url: str) -> bytes:
    """The response record of *url* found through the merged CDXJ index, read back."""
    proc = run_cli("warc", "index", "--data-dir", str(data))
    assert proc.returncode == 0, proc.stderr[-2000:]
    for line in (data / "warc" / "index.cdxj").read_text(encoding="utf-8").splitlines():
        _key, _ts, body = line.split(" ", 2)
        entry = json.loads(body)
        if entry.get("url") == url and entry.get("status") == "200":
            with (data / "warc" / entry["filename"]).open("rb") as fh:
                fh.seek(int(entry["offset"]))
                record = next(iter(ArchiveIterator(fh)))
                assert record.rec_headers.get_header("WARC-Target-URI") == url
                return bytes(record.content_stream().read())
    raise AssertionError(f"{url} not in the merged index")


def test_three_workers_fetch_each_url_once_and_store_every_article_once(
        fleet_replica: Replica, tmp_path: Path, redis_url: str,  # noqa: F811
        frontier_name: str, mongo: str) -> None:  # noqa: F811
    rep = fleet_replica
    start = len(rep.log)
    data = tmp_path / "data"
    # A polite pace (0.1 s per request to the host, fleet-wide) leaves the workers time
    # to start and join before the seeding crawl has done it all.
    procs = _fleet(rep, data, redis_url, frontier_name, mongo, 2,
                   "--set", "DOWNLOAD_DELAY=0.1")
    _finish(procs)
    log = rep.log[start:]
    fetched = _fetched(log)
    twice = {path: n for path, n in fetched.items() if n > 1}
    assert not twice, f"fetched more than once: {twice}"
    # robots.txt too: the first worker's copy is the fleet's.
    assert [e.path for e in log].count("/robots.txt") == 1
    articles = _check_store(rep, data, mongo)
    # Every worker worked, and wrote WARC files of its own.
    exchanges = _warc_exchanges(data)
    assert len(exchanges) >= 2, sorted(exchanges)
    archived = Counter(uri for records in exchanges.values() for uri, _ in records)
    served = {rep.url + e.path for e in log}
    assert served - set(archived) == set(), "exchanges missing from the WARC files"
    assert all(n == 1 for uri, n in archived.items() if not uri.endswith("/robots.txt"))
    story = next(a for a in articles if a["body"])
    html = _replay(data, story["url"])
    assert story["title"].encode("utf-8") in html or story["title"] in html.decode("gb18030",
                                                                                  "replace")
    # crawl_runs: one document per process, each naming its worker.
    with MongoClient(mongo) as client:
        runs = list(client["gzarchive"]["crawl_runs"].find())
    roles = Counter((r.get("settings") or {}).get("role") for r in runs)
    pages = {(r.get("settings") or {}).get("worker"): (r.get("counts") or {}).get("pages")
             for r in runs}
    print("pages per worker:", pages)
    assert roles == {"crawl": 1, "worker": 2} and len(pages) == 3, runs
    assert sum(pages.values()) == len(log)
    assert sum(1 for n in pages.values() if n) >= 2, pages


def test_a_killed_worker_loses_nothing_and_status_shows_the_reclaimed_requests(
        fleet_replica: Replica, tmp_path: Path, redis_url: str,  # noqa: F811
        frontier_name: str, mongo: str) -> None:  # noqa: F811
    rep = fleet_replica
    start = len(rep.log)
    data = tmp_path / "data"
    # MONGODB_BATCH_SIZE large: the victim dies with stored-looking articles unflushed.
    procs = _fleet(rep, data, redis_url, frontier_name, mongo, 2,
                   "--set", "MONGODB_BATCH_SIZE=100", "--set", "DOWNLOAD_DELAY=0.05")
    victim = procs[1]
    client = redis.Redis.from_url(redis_url)
    key = f"gzarchive:{frontier_name}:"
    deadline = time.time() + 120
    while time.time() < deadline:
        # Killed once it served a dozen articles and holds requests of its own.
        workers = {w.decode(): json.loads(v) for w, v in client.hgetall(key + "workers").items()}
        mine = [w for w, info in workers.items() if info.get("pid") == victim.pid]
        articles = sum(bool(ARTICLE.match(e.path)) for e in rep.log[start:])
        if mine and articles >= 12 and (client.hlen(f"{key}held:{mine[0]}")
                                        + client.hlen(f"{key}inflight:{mine[0]}")) >= 3:
            break
        time.sleep(0.01)
    assert victim.poll() is None, "the worker ended before it could be killed"
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    _finish([procs[0], procs[2]])
    _check_store(rep, data, mongo)
    status = run_cli("frontier", "status", "--redis-url", redis_url, "--frontier",
                     frontier_name, "--json")
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert doc["reclaimed"] > 0 and doc["queued"] == 0 and doc["in_flight"] == 0, doc
    print("frontier status after the kill:", doc)
    dead = [w for w in doc["workers"] if w["reclaimed"]]
    assert len(dead) == 1 and not dead[0]["alive"], doc["workers"]
    text = run_cli("frontier", "status", "--redis-url", redis_url, "--frontier",
                   frontier_name)
    assert f"reclaimed {doc['reclaimed']}" in text.stdout, text.stdout


def test_the_per_host_delay_holds_across_workers(
        fleet_replica: Replica, tmp_path: Path, redis_url: str,  # noqa: F811
        frontier_name: str, mongo: str) -> None:  # noqa: F811
    rep = fleet_replica
    delay = 0.25
    start = len(rep.log)
    procs = _fleet(rep, tmp_path / "data", redis_url, frontier_name, mongo, 2,
                   "--set", f"DOWNLOAD_DELAY={delay}", seed=("--max-articles", "12"))
    _finish(procs)
    times = sorted(e.time for e in rep.log[start:] if e.path != "/robots.txt")
    assert len(times) > 20
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    # Served times are the reserved starts plus the time to dispatch and send: a worker's
    # event loop late by a few tens of ms (a loaded machine) narrows one gap, widening
    # the one before. Two workers each keeping only their own pace would make half of
    # the gaps short and the span half as long. (No bound on the shortest gap: at a load
    # average of 15 a worker's loop was once 0.2 s late, leaving one gap of 0.04 s.)
    short = [g for g in gaps if g < delay * 0.8]
    assert len(short) <= max(1, len(gaps) // 10), sorted(gaps)[:5]
    span = times[-1] - times[0]
    assert span >= delay * (len(times) - 1) * 0.9


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_store_serve_takes_a_fleet_crawl_from_another_data_directory(
        fleet_replica: Replica, tmp_path: Path, redis_url: str,  # noqa: F811
        frontier_name: str) -> None:  # noqa: F811
    rep = fleet_replica
    store_dir, worker_dir = tmp_path / "served", tmp_path / "worker"
    port = _free_port()
    # Not on the network without saying so: no authentication.
    refused = run_cli("store", "serve", "--bind", f"0.0.0.0:{port}", "--data-dir", str(store_dir))
    assert refused.returncode == 2 and "--allow-remote" in refused.stderr, refused.stderr
    assert not (store_dir / "db" / "server.json").exists()
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    serve = subprocess.Popen([sys.executable, "-m", "crawler", "store", "serve", "--bind",
                              f"127.0.0.1:{port}", "--data-dir", str(store_dir)], cwd=ROOT,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    try:
        assert serve.stdout is not None
        line = serve.stdout.readline()
        uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
        assert f"serving {store_dir.resolve() / 'db' / 'store'} on {uri}" in line, line
        # A fleet's seeding crawl on "another machine" (a data directory of its own).
        proc = _start("crawl", rep, worker_dir, redis_url, frontier_name, uri,
                      "--max-articles", "6")
        _finish([proc])
        with MongoClient(uri, serverSelectionTimeoutMS=5000) as client:
            stored = {d["url"] for d in client["gzarchive"]["articles"].find({}, {"url": 1})}
        truth = {t["url"] for t in rep.ground_truth()}
        assert len(stored) >= 6 and stored <= truth, sorted(stored)
        assert not (worker_dir / "db").exists(), "the worker opened an embedded store"
        # A local command on the served data directory joins the served store.
        local = export(store_dir)
        assert {a["url"] for a in local} == stored
    finally:
        os.killpg(serve.pid, signal.SIGTERM)
        out, err = serve.communicate(timeout=30)
    assert serve.returncode == 0, err[-2000:]
    assert "ONE SecantusDB process" in err and "no authentication" in err, err
    assert "stopped" in out and not (store_dir / "db" / "server.json").exists()


def test_scrapy_crawl_seeds_the_frontier_and_a_worker_joins(
        fleet_replica: Replica, tmp_path: Path, redis_url: str,  # noqa: F811
        frontier_name: str, mongo: str) -> None:  # noqa: F811
    rep = fleet_replica
    start = len(rep.log)
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    base = [sys.executable, "-m", "scrapy", "crawl", "section", "-s", f"PORTAL_URL={rep.url}",
            "-s", f"DATA_DIR={data}", "-s", f"FLEET_REDIS_URL={redis_url}",
            "-s", f"FLEET_NAME={frontier_name}", "-s", "AUTOTHROTTLE_ENABLED=False",
            "-L", "WARNING"]
    # A fleet without one MongoDB is a usage error, before anything starts.
    no_store = subprocess.run(base, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=120)
    assert no_store.returncode == 2 and "MONGODB_URI" in no_store.stderr, no_store.stderr[-2000:]
    assert not client_exists(redis_url, frontier_name)
    crawl = subprocess.Popen([*base, "-s", f"MONGODB_URI={mongo}", "-s", "DOWNLOAD_DELAY=0.1",
                              "-s", "PORTAL_MAX_ARTICLES=12"],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, start_new_session=True)
    client = redis.Redis.from_url(redis_url)
    deadline = time.time() + 60
    while not client.exists(f"gzarchive:{frontier_name}:config"):
        assert crawl.poll() is None, crawl.communicate()
        assert time.time() < deadline, "scrapy crawl never seeded the frontier"
        time.sleep(0.05)
    published = json.loads(client.get(f"gzarchive:{frontier_name}:config") or b"{}")
    assert published["PORTAL_URL"] == rep.url and published["PORTAL_MAX_ARTICLES"] == 12
    worker = _start("worker", rep, data, redis_url, frontier_name, mongo,
                    "--set", "DOWNLOAD_DELAY=0.1")
    out, err = crawl.communicate(timeout=240)
    assert crawl.returncode == 0, (out[-2000:], err[-3000:])
    _finish([worker])
    fetched = _fetched(rep.log[start:])
    assert not {p: n for p, n in fetched.items() if n > 1}, fetched
    stored = export(data, mongodb_uri=mongo)
    truth = {t["url"] for t in rep.ground_truth()}
    assert len(stored) >= 12 and {a["url"] for a in stored} <= truth
    assert len({a["url"] for a in stored}) == len(stored)
    with MongoClient(mongo) as mc:
        runs = list(mc["gzarchive"]["crawl_runs"].find())
    roles = Counter((r.get("settings") or {}).get("role") for r in runs)
    assert roles == {"crawl": 1, "worker": 1}, runs


def client_exists(redis_url: str, name: str) -> bool:  # noqa: F811
    """Whether any key of frontier *name* exists."""
    return bool(list(redis.Redis.from_url(redis_url).scan_iter(match=f"gzarchive:{name}:*")))


@pytest.fixture(scope="module")
def fleet_replica_js() -> Iterator[Replica]:
    """Both sections, Hi,貴州!'s listing filled in by JavaScript (`--profile js`)."""
    with running_replica() as rep:
        yield rep


@pytest.mark.browser
def test_a_fleet_renders_the_javascript_section(
        fleet_replica_js: Replica, tmp_path: Path, redis_url: str,  # noqa: F811
        frontier_name: str, mongo: str) -> None:  # noqa: F811
    if rendering.find_chromium() is None:
        pytest.skip("Chromium not installed (apt-get install chromium-headless-shell)")
    rep = fleet_replica_js
    start = len(rep.log)
    data = tmp_path / "data"
    procs = _fleet(rep, data, redis_url, frontier_name, mongo, 1, "--set", "DOWNLOAD_DELAY=0.05")
    _finish(procs)
    log = rep.log[start:]
    articles = Counter(e.path for e in log if ARTICLE.match(e.path))
    assert articles and max(articles.values()) == 1, articles
    _check_store(rep, data, mongo)  # every article of both sections, once, its sections
    # The rendered listing is archived as a rendering, by whichever worker took it.
    kinds = Counter(r.rec_type for path in sorted((data / "warc").glob("*.warc.gz"))
                    for r in ArchiveIterator(path.open("rb")))
    assert kinds["conversion"] > 0, kinds
    # An image the browser archived is marked in the fleet's Redis duplicate filter: the
    # spiders of the workers do not fetch it again for its article. (One may still be:
    # an article reached earlier through another article's links has its image queued
    # before the browser shows it.)
    by_browser = {e.path for e in log if e.from_browser
                  and e.response_headers.get("Content-Type", "").startswith("image/")}
    again = {e.path for e in log if not e.from_browser} & by_browser
    assert len(by_browser) >= 10 and len(again) <= len(by_browser) // 4, (by_browser, again)

    # The decision that the section needs a browser is the fleet's (shared crawl state).
    rendered = redis.Redis.from_url(redis_url).smembers(f"gzarchive:{frontier_name}:rendered")
    assert len(rendered) == 1, rendered


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_store_serve_stops_on_a_signal_to_its_process_group(tmp_path: Path,
                                                             signum: int) -> None:
    # Ctrl-C in a terminal (or `kill -- -PGID`) signals the command and its server at once,
    # and the command forwards the signal too: the server gets it twice in a few
    # milliseconds. It used to hang about one time in six after a crawl (a lock taken in
    # its handler); a burst of signals makes that window likely.
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    for attempt in range(6):
        data = tmp_path / f"d{attempt}"
        serve = subprocess.Popen([sys.executable, "-m", "crawler", "store", "serve", "--bind",
                                  f"127.0.0.1:{_free_port()}", "--data-dir", str(data)],
                                 cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, start_new_session=True)
        assert serve.stdout is not None
        line = serve.stdout.readline()
        assert "serving" in line, line + serve.stderr.read()  # type: ignore[union-attr]
        server_pid = json.loads((data / "db" / "server.json").read_text())["pid"]
        os.killpg(serve.pid, signum)
        for _ in range(100):  # more of the same: each one a chance to land in a handler
            try:
                os.kill(server_pid, signum)
            except ProcessLookupError:
                break
            time.sleep(0.0005)
        try:
            out, err = serve.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.communicate()
            pytest.fail(f"attempt {attempt}: the store server did not stop on {signum!r}")
        assert serve.returncode == 0, err[-2000:]
        assert "stopped" in out and not (data / "db" / "server.json").exists()
