"""One crawl at a time per data directory.

``RunLock(data_dir)`` holds ``DATA/state/crawl.lock`` with ``fcntl.flock`` (non-blocking)
for the length of a run and records who holds it as JSON ``{pid, host, started, argv}``.
The kernel drops a flock when its holder dies, so a crashed or SIGKILLed run never
blocks the next one; the leftover JSON is then reported as a stale lock and taken over.
A lock still held although the recorded process is gone (a child that inherited the
descriptor outlived the crawl) is broken by replacing the lock file.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil

logger = logging.getLogger(__name__)

LOCK_NAME = "crawl.lock"
# A holder writes its record right after taking the flock; give it this long.
_RECORD_GRACE = 0.5


class LockHeld(Exception):
    """Another live process holds the run lock on this data directory."""

    def __init__(self, path: Path, holder: HolderInfo | None) -> None:
        self.path = path
        self.holder = holder
        if holder is None:
            who = "another process (no holder record yet)"
        else:
            who = f"pid {holder.pid} on {holder.host}, started {holder.started}"
        super().__init__(f"another crawl holds the lock {path} ({who})")


@dataclass(frozen=True)
class HolderInfo:
    """What a lock file says about the run that wrote it."""

    pid: int
    host: str
    started: str
    argv: list[str]

    @classmethod
    def parse(cls, text: str) -> HolderInfo | None:
        try:
            data = json.loads(text)
            return cls(pid=int(data["pid"]), host=str(data["host"]),
                       started=str(data["started"]), argv=[str(a) for a in data["argv"]])
        except (ValueError, KeyError, TypeError):
            return None

    def is_alive(self) -> bool:
        """False only when the holder certainly is gone (same host, pid dead or reused)."""
        if self.host != socket.gethostname():
            return True  # cannot tell from here; assume it runs
        try:
            proc = psutil.Process(self.pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                return False
            created = float(proc.create_time())
        except psutil.NoSuchProcess:
            return False
        except psutil.Error:
            return True  # exists but cannot be inspected (another user)
        try:
            started = dt.datetime.fromisoformat(self.started).timestamp()
        except ValueError:
            return True
        # A process created after the run started is a reused pid, not the holder.
        return created <= started + 1.0


class RunLock:
    """Context manager holding the per-data-directory run lock; see the module doc."""

    def __init__(self, data_dir: Path | str, argv: Sequence[str] | None = None) -> None:
        self.path = Path(data_dir).resolve() / "state" / LOCK_NAME
        self.argv = list(sys.argv if argv is None else argv)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise ``LockHeld`` at once."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this RunLock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _attempt in range(5):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self._read_holder(fd, wait=True)
                if holder is None or holder.is_alive():
                    os.close(fd)
                    raise LockHeld(self.path, holder) from None
                # Held, yet the recorded run is gone: a descendant that inherited the
                # descriptor keeps it. Replace the file; that orphan keeps the old inode.
                if self._same_file(fd):
                    logger.warning("lock %s is still held on behalf of pid %d (started %s), "
                                   "which is no longer running; replacing the lock file",
                                   self.path, holder.pid, holder.started)
                    self.path.unlink(missing_ok=True)
                os.close(fd)
                continue
            except BaseException:
                os.close(fd)
                raise
            if not self._same_file(fd):
                # Someone replaced the file between our open() and flock(): retry on the new one.
                os.close(fd)
                continue
            self._take(fd)
            return
        raise LockHeld(self.path, None)

    def release(self) -> None:
        """Empty the record (a clean exit leaves no stale holder) and drop the lock."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def _take(self, fd: int) -> None:
        previous = self._read_holder(fd, wait=False)
        if previous is not None:
            logger.warning("taking over stale lock %s left by pid %d on %s (started %s), "
                           "which ended without releasing it", self.path, previous.pid,
                           previous.host, previous.started)
        record: dict[str, Any] = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "argv": self.argv,
        }
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(record, ensure_ascii=False).encode("utf-8"), 0)
            os.fsync(fd)
        except BaseException:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise
        self._fd = fd

    def _same_file(self, fd: int) -> bool:
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (on_disk.st_dev, on_disk.st_ino) == (mine.st_dev, mine.st_ino)

    @staticmethod
    def _read_holder(fd: int, wait: bool) -> HolderInfo | None:
        deadline = time.monotonic() + (_RECORD_GRACE if wait else 0.0)
        while True:
            size = os.fstat(fd).st_size
            text = os.pread(fd, size, 0).decode("utf-8", "replace") if size else ""
            holder = HolderInfo.parse(text) if text.strip() else None
            if holder is not None or time.monotonic() >= deadline:
                return holder
            time.sleep(0.05)


__all__ = ["LOCK_NAME", "HolderInfo", "LockHeld", "RunLock"]
