"""RunLock: one crawl per data directory, across processes; stale locks are taken over."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crawler.runlock import LockHeld, RunLock
from tests.helpers import ROOT

# Takes the lock, says so (one write(2) per line: two processes may share the pipe),
# then waits to be killed (or exits cleanly when stdin closes).
HOLDER = r"""
import os, sys
from crawler.runlock import RunLock
lock = RunLock(sys.argv[1], argv=["gzarchive", "crawl", "holder"])
lock.acquire()
if sys.argv[2] == "orphan":
    # A child inherits the locked descriptor and outlives us, as a daemon might.
    if os.fork() == 0:
        os.write(1, f"child {os.getpid()}\n".encode())
        sys.stdin.read()
        os._exit(0)
    os.write(1, f"locked {os.getpid()}\n".encode())
    os._exit(0)
os.write(1, f"locked {os.getpid()}\n".encode())
sys.stdin.read()
lock.release()
"""


def start_holder(data_dir: Path, mode: str = "hold") -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(data_dir), mode], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    return proc


def read_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, f"holder died early (exit {proc.poll()})"
    return line


def test_record_and_clean_release(tmp_path: Path) -> None:
    lock = RunLock(tmp_path, argv=["gzarchive", "crawl", "x"])
    with lock:
        record = json.loads(lock.path.read_text())
        assert lock.path == tmp_path.resolve() / "state" / "crawl.lock"
        assert record["pid"] == os.getpid()
        assert record["host"] == socket.gethostname()
        assert record["argv"] == ["gzarchive", "crawl", "x"]
        assert "T" in record["started"]
        with pytest.raises(RuntimeError):
            lock.acquire()
    assert not lock.held
    assert lock.path.read_text() == ""
    lock.release()  # harmless twice


def test_second_process_is_refused_at_once(tmp_path: Path) -> None:
    holder = start_holder(tmp_path)
    try:
        pid = int(read_line(holder).split()[1])
        started = json.loads((tmp_path / "state" / "crawl.lock").read_text())["started"]
        t0 = time.monotonic()
        with pytest.raises(LockHeld) as info:
            RunLock(tmp_path).acquire()
        assert time.monotonic() - t0 < 1.0
        message = str(info.value)
        assert f"pid {pid}" in message and started in message
        assert info.value.holder is not None and info.value.holder.pid == pid
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    assert holder.returncode == 0
    with RunLock(tmp_path) as lock:  # released cleanly: free again
        assert lock.held


def test_two_contenders_in_separate_processes(tmp_path: Path) -> None:
    holder = start_holder(tmp_path)
    try:
        read_line(holder)
        code = ("import sys\nfrom crawler.runlock import RunLock, LockHeld\n"
                "try:\n    RunLock(sys.argv[1]).acquire()\nexcept LockHeld as e:\n"
                "    print(e); sys.exit(6)\n")
        t0 = time.monotonic()
        other = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT,
                               capture_output=True, text=True, timeout=30,
                               env=dict(os.environ, PYTHONPATH=str(ROOT)))
        assert other.returncode == 6, other.stderr
        assert "another crawl holds the lock" in other.stdout
        assert time.monotonic() - t0 < 10
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)


def test_stale_lock_after_sigkill_is_taken_over(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    holder = start_holder(tmp_path)
    pid = int(read_line(holder).split()[1])
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    assert json.loads((tmp_path / "state" / "crawl.lock").read_text())["pid"] == pid
    with caplog.at_level(logging.WARNING, logger="crawler.runlock"):
        with RunLock(tmp_path) as lock:
            assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    assert any("stale lock" in r.getMessage() and str(pid) in r.getMessage()
               for r in caplog.records)


def test_lock_kept_by_an_orphan_of_a_dead_holder_is_broken(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    holder = start_holder(tmp_path, "orphan")
    child = None
    try:
        lines = [read_line(holder), read_line(holder)]
        assert sorted(line.split()[0] for line in lines) == ["child", "locked"], lines
        pid = int(next(line for line in lines if line.startswith("locked")).split()[1])
        child = int(next(line for line in lines if line.startswith("child")).split()[1])
        holder.wait(timeout=30)  # the recorded holder is gone, its child keeps the flock
        with caplog.at_level(logging.WARNING, logger="crawler.runlock"):
            with RunLock(tmp_path) as lock:
                assert json.loads(lock.path.read_text())["pid"] == os.getpid()
        assert any("no longer running" in r.getMessage() and str(pid) in r.getMessage()
                   for r in caplog.records)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        if child is not None:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
