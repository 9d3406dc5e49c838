"""Read commands are read-only: they never create a store and work on a read-only archive.

One crawl of the replica; its archive is copied and made read-only (a read-only bind
mount when the test may mount, else ``chmod -R a-w`` for a user other than root, since
root ignores file modes), then query, show, stats, export and ``warc verify`` run on it
through the CLI in a subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from storage.mongo.embedded import Paths, owner_is_alive
from tests.helpers import crawl, export, run_cli

pytestmark = pytest.mark.slow


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its size and mtime: what "unchanged" means."""
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        out[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


def _wait_until_released(data: Path, timeout: float = 60) -> None:
    """Wait for the embedded server of ``data`` to stop (its files settle)."""
    deadline = time.monotonic() + timeout
    while owner_is_alive(Paths.of(data)) or (data / "db" / "server.json").exists():
        assert time.monotonic() < deadline, "embedded server did not stop"
        time.sleep(0.2)


def _make_read_only(src: Path, mnt: Path) -> tuple[Path, str]:
    """A read-only view of ``src``: (path, how). Skips when none can be made."""
    mnt.mkdir()
    bind = subprocess.run(["mount", "--bind", str(src), str(mnt)], capture_output=True)
    if bind.returncode == 0:
        ro = subprocess.run(["mount", "-o", "remount,bind,ro", str(mnt)], capture_output=True)
        if ro.returncode == 0:
            return mnt, "mount"
        subprocess.run(["umount", str(mnt)], check=True)
    if os.geteuid() == 0:
        pytest.skip("cannot mount read-only, and root ignores file modes")
    subprocess.run(["chmod", "-R", "a-w", str(src)], check=True)
    return src, "chmod"


@pytest.fixture(scope="module")
def archive(replica: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("readonly")
    crawled = base / "crawled"
    proc = crawl(replica.url, crawled, "--quiet")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = export(crawled)
    _wait_until_released(crawled)
    copy = base / "copy"
    shutil.copytree(crawled, copy, symlinks=True)
    before = _snapshot(copy)
    path, how = _make_read_only(copy, base / "ro")
    tmpdir = base / "tmp"  # where a read command may put its temporary copy
    tmpdir.mkdir()
    try:
        yield {"crawled": crawled, "rows": rows, "copy": copy, "path": path, "how": how,
               "before": before, "tmpdir": tmpdir}
    finally:
        if how == "mount":
            subprocess.run(["umount", str(path)], check=False)
        else:
            subprocess.run(["chmod", "-R", "u+w", str(copy)], check=False)


def _ro_cli(archive: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    proc = run_cli(*args, "--data-dir", str(archive["path"]),
                   env={"TMPDIR": str(archive["tmpdir"])})
    assert proc.returncode == 0, f"{args}: {proc.stderr[-3000:]}"
    return proc


def test_read_commands_on_a_read_only_archive(archive: dict[str, Any]) -> None:
    path = archive["path"]
    if archive["how"] == "mount":
        with pytest.raises(OSError):
            (path / "probe").touch()  # the mount is really read-only, even for root
    rows = archive["rows"]
    assert len(rows) > 20

    exported = _ro_cli(archive, "export")
    assert [json.loads(line) for line in exported.stdout.splitlines()] == rows
    # one line says the store is read from a temporary copy, and why
    assert exported.stderr.count("\n") == 1 and "temporary copy" in exported.stderr

    newest = rows[0]  # export is newest first, as query is
    table = _ro_cli(archive, "query", "--limit", "3")
    assert "3 article(s)" in table.stdout
    assert f"{len(rows) - 3} more not shown" in table.stdout
    listed = _ro_cli(archive, "query", "--limit", "3", "--format", "jsonl")
    assert [json.loads(line) for line in listed.stdout.splitlines()] == rows[:3]

    shown = _ro_cli(archive, "show", newest["url"], "--json")
    assert json.loads(shown.stdout)["article"] == newest

    stats = _ro_cli(archive, "stats")
    assert f"{len(rows)} articles stored" in stats.stdout
    assert "老外在贵州" in stats.stdout

    verify = _ro_cli(archive, "warc", "verify", "--json")
    reports = [json.loads(line) for line in verify.stdout.splitlines() if line.startswith("{")]
    assert reports and all(r["ok"] for r in reports)

    # nothing was written to the archive, and no temporary copy was left behind
    assert _snapshot(archive["copy"]) == archive["before"]
    assert list(archive["tmpdir"].iterdir()) == []


@pytest.mark.parametrize("filters", [[], ["--section", "老外在貴州"], ["--hide-near-duplicates"],
                                     ["--since", "2025-06-01"], ["--until", "2025-06-01"],
                                     ["--search", "贵州"]], ids=lambda f: " ".join(f) or "all")
def test_query_says_how_many_more_rows(archive: dict[str, Any], filters: list[str]) -> None:
    data = archive["crawled"]
    every = run_cli("query", "--data-dir", str(data), "--format", "jsonl", "--limit", "0",
                    *filters)
    total = len(every.stdout.splitlines())
    assert every.returncode == 0 and every.stderr == "" and total > 5
    proc = run_cli("query", "--data-dir", str(data), "--format", "jsonl", "--limit", "5",
                   *filters)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines() == every.stdout.splitlines()[:5]
    assert proc.stderr.strip() == (f"gzarchive query: {total - 5} more not shown "
                                   "(--limit 5; --limit 0 shows all)")


def test_section_in_another_width_and_case_is_found(archive: dict[str, Any]) -> None:
    proc = run_cli("export", "--data-dir", str(archive["crawled"]), "--section", "hi，貴州！")
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = [json.loads(line) for line in proc.stdout.splitlines()]
    assert got == [r for r in archive["rows"] if "Hi,贵州!" in r["sections"]] and got


@pytest.mark.parametrize("command", [["query", "--section", "老外在貴洲"],
                                     ["export", "--section", "老外在貴洲"]])
def test_unknown_section_is_an_error_naming_the_known_ones(archive: dict[str, Any],
                                                           command: list[str]) -> None:
    data = archive["crawled"]
    _wait_until_released(data)
    before = _snapshot(data)
    proc = run_cli(*command, "--data-dir", str(data))
    assert proc.returncode == 2
    assert proc.stdout == "" or "url" not in proc.stdout  # no CSV header, no rows
    line = proc.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "unknown section '老外在貴洲'" in line
    assert "老外在贵州" in line and "Hi,贵州!" in line
    _wait_until_released(data)
    changed = {k for k, v in _snapshot(data).items() if before.get(k) != v}
    # only the embedded server's own bookkeeping and its store files may move
    assert all(k == "db" or k.startswith("db/") for k in changed), changed


@pytest.mark.parametrize("command", [["query"], ["show", "http://gz.cri.cn/x.html"], ["stats"],
                                     ["export"]])
def test_missing_archive_is_exit_2_and_creates_nothing(tmp_path: Path,
                                                       command: list[str]) -> None:
    missing = tmp_path / "mistyped"
    proc = run_cli(*command, "--data-dir", str(missing))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stdout == ""
    assert proc.stderr.strip() == (f"gzarchive {command[0]}: no archive at {missing} "
                                   f"(no store under {missing / 'db' / 'store'})")
    assert not missing.exists()
    # a directory that exists but holds no store is no archive either, and stays empty
    missing.mkdir()
    again = run_cli(*command, "--data-dir", str(missing))
    assert again.returncode == 2 and "no archive at" in again.stderr
    assert list(missing.iterdir()) == []


def test_empty_mongodb_is_no_archive_and_stays_empty(tmp_path: Path) -> None:
    """With --mongodb-uri, a database without articles is no archive either."""
    if os.environ.get("MONGODB_URI"):
        pytest.skip("needs a server of its own, empty")
    from pymongo import MongoClient
    from secantus import SecantusDBServer

    server = SecantusDBServer(storage_path=str(tmp_path / "mongo"), replica_set_name=None)
    server.start()
    uri = f"{server.uri}?directConnection=true"
    try:
        for command in (["query"], ["stats"], ["export", "--section", "x"]):
            proc = run_cli(*command, "--mongodb-uri", uri, "--data-dir", str(tmp_path / "d"))
            assert proc.returncode == 2, proc.stderr[-2000:]
            assert proc.stderr.strip().startswith(f"gzarchive {command[0]}: no archive at "
                                                  "mongodb://")
            assert proc.stderr.count("\n") == 1
        client: MongoClient[dict[str, Any]] = MongoClient(uri)
        try:
            assert "gzarchive" not in client.list_database_names()
        finally:
            client.close()
        assert not (tmp_path / "d").exists()
    finally:
        server.stop()
