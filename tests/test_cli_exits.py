"""Exit codes of `gzarchive crawl` as a contract: each failure through the CLI in a
subprocess, its code, one line (or a short traceback-free paragraph) on stderr, and
nothing created on disk where it should not be."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from crawler.run.exits import (
    EXIT_ARCHIVE,
    EXIT_INTERRUPTED,
    EXIT_LOCKED,
    EXIT_SECTION,
    EXIT_STORE,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
)
from crawler.runlock import RunLock
from tests.helpers import ROOT, run_cli

pytestmark = pytest.mark.slow

MAX_LINES = 10  # "a short paragraph": the reason last, a few of the components' own lines


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def silent_server() -> Iterator[str]:
    """A host that accepts connections and never answers (an unreachable portal)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        server.close()


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """*path* as a read-only bind mount of itself (root ignores file modes)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "--bind", str(path), str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {mounted.stderr.decode().strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)


@dataclass
class Case:
    name: str
    code: int
    stderr_has: str
    args: Callable[[Any, Path], list[str]]
    setup: Callable[[Path], Any] | None = None
    absent: tuple[str, ...] = ()          # paths under the data dir that must not exist
    data_dir_created: bool = True
    replica: dict[str, Any] = field(default_factory=dict)


def _portal(rep: Any, data: Path, *extra: str) -> list[str]:
    return ["--portal-url", rep.url, "--data-dir", str(data),
            "--set", "AUTOTHROTTLE_ENABLED=False", *extra]


CASES = [
    Case("bad-setting-type", EXIT_USAGE, "DOWNLOAD_TIMEOUT expects a number",
         lambda rep, d: _portal(rep, d, "--set", "DOWNLOAD_TIMEOUT=abc"),
         data_dir_created=False),
    Case("bad-setting-bool", EXIT_USAGE, "ROBOTSTXT_OBEY expects true or false",
         lambda rep, d: _portal(rep, d, "--set", "ROBOTSTXT_OBEY=maybe"),
         data_dir_created=False),
    Case("contradictory-settings", EXIT_USAGE, "exceeds AUTOTHROTTLE_MAX_DELAY",
         lambda rep, d: _portal(rep, d, "--set", "AUTOTHROTTLE_START_DELAY=99"),
         data_dir_created=False),
    Case("bad-write-concern", EXIT_USAGE, "MONGODB_WRITE_CONCERN",
         lambda rep, d: _portal(rep, d, "--set", "MONGODB_WRITE_CONCERN=j=maybe"),
         data_dir_created=False),
    Case("bad-dedup-threshold", EXIT_USAGE, "DEDUP_THRESHOLD must be in (0, 1]",
         lambda rep, d: _portal(rep, d, "--set", "DEDUP_THRESHOLD=2"),
         data_dir_created=False),
    Case("malformed-set", EXIT_USAGE, "NAME=VALUE",
         lambda rep, d: _portal(rep, d, "--set", "DOWNLOAD_TIMEOUT"), data_dir_created=False),
    Case("bad-portal-url", EXIT_USAGE, "PORTAL_URL must be an http(s) URL",
         lambda rep, d: ["--portal-url", "ftp://example", "--data-dir", str(d)],
         data_dir_created=False),
    Case("data-dir-is-a-file", EXIT_USAGE, "cannot create the data directory",
         lambda rep, d: _portal(rep, d / "file"), setup=lambda d: (d / "file").touch()),
    Case("portal-refused", EXIT_UNREACHABLE, "portal unreachable",
         lambda rep, d: ["--portal-url", f"http://127.0.0.1:{free_port()}", "--data-dir",
                         str(d), "--set", "RETRY_TIMES=0"], absent=("warc/*.warc.gz",)),
    Case("section-not-found", EXIT_SECTION, "not found in the navigation",
         lambda rep, d: _portal(rep, d, "不存在的栏目")),
    Case("needs-browser", EXIT_SECTION, "need a browser",
         lambda rep, d: _portal(rep, d, "Hi,貴州!", "--render", "never"),
         replica={"js_section": "Hi,贵州!"}),
    Case("locked", EXIT_LOCKED, "another crawl holds the lock",
         lambda rep, d: _portal(rep, d), absent=("warc", "db", "spool", "state/crawl.sqlite")),
    Case("database-down", EXIT_STORE, "database unreachable",
         lambda rep, d: _portal(rep, d, "--max-articles", "2", "--mongodb-uri",
                                f"mongodb://127.0.0.1:{free_port()}/"), absent=("db",)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_failure_exit_code_and_one_line(case: Case, replica: Any, replica_factory: Any,
                                        tmp_path: Path) -> None:
    rep = replica_factory(**case.replica) if case.replica else replica
    data = tmp_path / "data"
    if case.setup is not None:
        data.mkdir()
        case.setup(data)
    lock = RunLock(data) if case.name == "locked" else None
    if lock is not None:
        lock.acquire()
    try:
        proc = run_cli("crawl", "--quiet", *case.args(rep, data), timeout=300)
    finally:
        if lock is not None:
            lock.release()
    check_stderr(proc, case.code, case.stderr_has)
    if not case.data_dir_created:
        assert not data.exists(), sorted(p.name for p in data.iterdir())
    for pattern in case.absent:
        assert not list(data.glob(pattern)), f"{pattern} created"


def check_stderr(proc: subprocess.CompletedProcess[str], code: int, needle: str) -> None:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == code, (proc.returncode, proc.stderr[-3000:])
    assert needle in lines[-1], lines
    assert len(lines) <= MAX_LINES, lines
    assert "Traceback" not in proc.stderr and "Unhandled error" not in proc.stderr


def test_unreachable_host_times_out_to_one_line(tmp_path: Path) -> None:
    with silent_server() as url:
        proc = run_cli("crawl", "--portal-url", url, "--data-dir", str(tmp_path),
                       "--set", "DOWNLOAD_TIMEOUT=1", "--set", "RETRY_TIMES=0", timeout=120)
    check_stderr(proc, EXIT_UNREACHABLE, "portal unreachable")
    assert "status          : exit 3 (portal unreachable)" in proc.stdout


def test_read_only_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "ro"
    with read_only(data):
        proc = run_cli("crawl", "--quiet", "--data-dir", str(data), timeout=120)
        assert not list(data.iterdir())
    check_stderr(proc, EXIT_USAGE, "not writable")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_warc_write_failure_is_exit_8(replica: Any, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "warc").mkdir(parents=True)
    with read_only(data / "warc"):
        proc = run_cli("crawl", "--quiet", *_portal(replica, data, "--max-articles", "2"),
                       timeout=300)
    check_stderr(proc, EXIT_ARCHIVE, "archive write failure")
    assert "archive/warc/errors/write" in proc.stdout


def test_sigterm_is_exit_130_and_said(replica: Any, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    cmd = [sys.executable, "-m", "crawler", "crawl", "--quiet",
           *_portal(replica, tmp_path, "--set", "DOWNLOAD_DELAY=0.5")]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lock = tmp_path / "state" / "crawl.lock"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (lock.exists() and lock.read_text().strip()):
        time.sleep(0.2)
    time.sleep(3)  # well into the crawl
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    done = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    check_stderr(done, EXIT_INTERRUPTED, "interrupted by SIGTERM")
    assert "exit 130 (interrupted)" in out
    assert "interrupted by SIGTERM" in (tmp_path / "logs" / "gzarchive.log").read_text()
    assert lock.read_text() == ""   # released


@pytest.mark.parametrize(("stats", "fatal_kind", "reason", "code"), [
    ({}, None, "finished", 0),
    ({}, None, "closespider_itemcount", 0),
    ({"archive/warc/errors/write": 1}, "portal-unreachable", "finished", EXIT_ARCHIVE),
    ({"archive/spool/errors": 2, "archive/mongo/spooled": 3}, None, "finished", EXIT_ARCHIVE),
    ({"archive/mongo/spooled": 3}, None, "shutdown", EXIT_STORE),
    ({}, "store-unavailable", "finished", EXIT_STORE),
    ({}, "portal-unreachable", "finished", EXIT_UNREACHABLE),
    ({}, "section-not-found", "shutdown", EXIT_SECTION),
    ({}, None, "shutdown", EXIT_INTERRUPTED),
    ({"spider_exceptions/KeyError": 1}, None, "finished", 5),
    ({}, None, "closespider_timeout", 5),
])
def test_decide_precedence(stats: dict[str, Any], fatal_kind: str | None, reason: str,
                           code: int) -> None:
    """A worse outcome is never hidden by a milder one (crawler/run/exits.py)."""
    from crawler.report import CrawlReport
    from crawler.run.exits import decide

    report = CrawlReport()
    if fatal_kind:
        report.set_fatal(fatal_kind, f"{fatal_kind} happened")
    assert decide(report, stats, reason).code == code


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("DOWNLOAD_TIMEOUT", "7", 7), ("DOWNLOAD_DELAY", "0.5", 0.5), ("ROBOTSTXT_OBEY", "false", False),
    ("RETRY_HTTP_CODES", "500,503", ["500", "503"]), ("PORTAL_SECTIONS", '["A", "B"]', ["A", "B"]),
    ("DOWNLOAD_HANDLERS", '{"ftp": null}', {"ftp": None}), ("PROGRESS_INTERVAL", "2", 2.0),
    ("SOME_NEW_SETTING", "x", "x"), ("LOG_FILE", "/tmp/x", "/tmp/x"),
])
def test_settings_converted_to_their_type(name: str, value: str, expected: Any) -> None:
    from scrapy.settings import Settings

    from crawler.run.settings_check import check_settings

    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    assert check_settings({name: value}, settings) == {name: expected}


@pytest.mark.parametrize(("name", "value", "says"), [
    ("CONCURRENT_REQUESTS", "many", "CONCURRENT_REQUESTS expects a number"),
    ("COOKIES_ENABLED", "yes please", "COOKIES_ENABLED expects true or false"),
    ("DOWNLOAD_HANDLERS", "[1]", "DOWNLOAD_HANDLERS expects a JSON object"),
    ("PORTAL_SECTIONS", "[oops", "PORTAL_SECTIONS expects a JSON list"),
])
def test_bad_setting_named_with_what_it_expects(name: str, value: str, says: str) -> None:
    from scrapy.settings import Settings

    from crawler.run.errors import SettingsError
    from crawler.run.settings_check import check_settings

    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    with pytest.raises(SettingsError, match=says):
        check_settings({name: value}, settings)


def test_embedded_store_that_cannot_start_still_spools_and_exits_7(replica: Any,
                                                                   tmp_path: Path) -> None:
    """The store's server is started ahead of the crawl (crawler/run/prestart.py); when
    it cannot start (its files owned by a process that does not answer), the crawl fails
    as it did without that: every article spooled, exit 7, one line."""
    import fcntl

    data = tmp_path / "data"
    (data / "db").mkdir(parents=True)
    fd = os.open(data / "db" / "owner.lock", os.O_CREAT | os.O_RDWR, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # an owner that never serves
    try:
        proc = run_cli("crawl", "--quiet", *_portal(replica, data, "--max-articles", "2"),
                       timeout=300)
    finally:
        os.close(fd)
    check_stderr(proc, EXIT_STORE, "database unreachable")
    spooled = (data / "spool" / "articles.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(spooled) >= 2, spooled
    assert not (data / "db" / "server.json").exists()
