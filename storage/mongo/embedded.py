"""The embedded store: one SecantusDB server process per data directory, shared by leases.

WiredTiger files have a single owner process, yet a cron crawl and a person's query may
run at once. So the files are owned by a detached server process
(``python -m storage.mongo.server --data-dir DIR``) that every client shares:

- ``DIR/db/startup.lock``  serialises starting, joining and stopping the server;
- ``DIR/db/owner.lock``    held (flock) by the server for its whole life: a second server
  refuses to start, so there are never two owners;
- ``DIR/db/server.json``   ``{"pid", "port", "uri", "started"}``, written atomically once
  the server listens, removed when it stops;
- ``DIR/db/leases/<pid>.<token>``  one per ``Lease``; the server stops once no lease
  belongs to a live process for ``idle_seconds``;
- ``DIR/db/store/``         the WiredTiger files; ``DIR/db/server.log`` its log.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil
from filelock import FileLock, Timeout
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from storage.mongo.errors import EmbeddedServerError

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: Seconds to wait for the files' owner to finish dying before calling it unresponsive.
OWNER_GRACE = 15.0


@dataclass(frozen=True)
class Paths:
    """Where the embedded store keeps its files under a data directory."""

    root: Path

    @classmethod
    def of(cls, data_dir: Path | str) -> Paths:
        return cls(Path(data_dir).resolve() / "db")

    @property
    def startup_lock(self) -> Path:
        return self.root / "startup.lock"

    @property
    def owner_lock(self) -> Path:
        return self.root / "owner.lock"

    @property
    def state(self) -> Path:
        return self.root / "server.json"

    @property
    def leases(self) -> Path:
        return self.root / "leases"

    @property
    def store(self) -> Path:
        return self.root / "store"

    @property
    def log(self) -> Path:
        return self.root / "server.log"


def process_alive(pid: int, create_time: float | None = None) -> bool:
    """Whether ``pid`` is a running (not zombie) process, the same one if ``create_time``."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return create_time is None or abs(proc.create_time() - create_time) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_state(paths: Paths) -> dict[str, Any] | None:
    try:
        data = json.loads(paths.state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def live_leases(paths: Paths, *, clean: bool = False) -> int:
    """Number of leases held by live processes (``clean`` removes the dead ones)."""
    live = 0
    for lease in paths.leases.glob("*"):
        try:
            info = json.loads(lease.read_text(encoding="utf-8"))
            alive = process_alive(int(info["pid"]), info.get("create_time"))
        except (OSError, ValueError, KeyError, TypeError):
            alive = False  # unreadable: a lease torn by a crash, or already released
        if alive:
            live += 1
        elif clean:
            with contextlib.suppress(OSError):
                lease.unlink()
    return live


def owner_is_alive(paths: Paths) -> bool:
    """Whether some process holds the owner lock (i.e. the store files are in use)."""
    fd = os.open(paths.owner_lock, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing also drops the lock if we got it
    return False


def ping(uri: str, timeout_ms: int = 2000) -> bool:
    client: MongoClient[dict[str, Any]] = MongoClient(
        uri, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms)
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


class Lease:
    """A claim on the shared embedded server; the server lives while leases do."""

    def __init__(self, uri: str, path: Path, pid: int) -> None:
        self.uri = uri
        self.path = path
        self.server_pid = pid

    def release(self) -> None:
        """Give the claim back (idempotent); the last one out lets the server stop."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


class EmbeddedServer:
    """Start or join the embedded SecantusDB server of a data directory."""

    @staticmethod
    def acquire(data_dir: Path | str, *, idle_seconds: float = 3.0,
                timeout: float = 60.0) -> Lease:
        """A lease on the running server, starting it first if there is none.

        Raises EmbeddedServerError when the server cannot be started or a live owner of
        the files does not answer.
        """
        paths = Paths.of(data_dir)
        paths.leases.mkdir(parents=True, exist_ok=True)
        try:
            with FileLock(str(paths.startup_lock), timeout=timeout):
                state = EmbeddedServer._running(paths)
                if state is None:
                    state = EmbeddedServer._start(paths, idle_seconds, timeout)
                lease = paths.leases / f"{os.getpid()}.{uuid.uuid4().hex[:12]}"
                me = psutil.Process()
                write_json_atomic(lease, {"pid": me.pid, "create_time": me.create_time()})
        except Timeout as exc:
            raise EmbeddedServerError(
                f"embedded store {paths.root} busy: startup lock not free in {timeout:.0f} s"
            ) from exc
        return Lease(str(state["uri"]), lease, int(state["pid"]))

    @staticmethod
    def _running(paths: Paths) -> dict[str, Any] | None:
        """The state of a live, answering server, or None (stale state is removed)."""
        state = read_state(paths)
        pid = int(state.get("pid", 0)) if state is not None else 0
        if state is not None and process_alive(pid):
            # A busy server may be slow to answer: give it a few tries before judging.
            for _ in range(3):
                if ping(str(state.get("uri"))):
                    return state
        # Never remove the state of, or start beside, a live owner of the files. A killed
        # owner shows as a zombie while its other threads still exit (and hold the
        # lock), so give a dying one a few seconds.
        deadline = time.monotonic() + OWNER_GRACE
        while owner_is_alive(paths):
            if time.monotonic() > deadline:
                raise EmbeddedServerError(
                    f"embedded store {paths.root} is owned by a process that does not answer")
            time.sleep(0.1)
        if state is not None:
            logger.warning("removing stale %s (pid %s not serving)", paths.state, pid)
            paths.state.unlink(missing_ok=True)
        return None

    @staticmethod
    def _start(paths: Paths, idle_seconds: float, timeout: float) -> dict[str, Any]:
        # Only looked up, never imported here: the engine lives in the server process.
        if importlib.util.find_spec("secantus") is None:
            raise EmbeddedServerError(
                "the embedded store needs SecantusDB, which is not installed: "
                "pip install 'gzarchive[embedded]', or set MONGODB_URI")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
        cmd = [sys.executable, "-m", "storage.mongo.server", "--data-dir",
               str(paths.root.parent), "--idle-seconds", str(idle_seconds)]
        with open(paths.log, "ab") as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    env=env, cwd=str(PROJECT_ROOT), start_new_session=True,
                                    close_fds=True)
        # Reap it when it exits so it never lingers as a zombie of this process.
        threading.Thread(target=proc.wait, name="secantus-reaper", daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = read_state(paths)
            if state is not None and state.get("pid") == proc.pid:
                return state
            if proc.poll() is not None:
                raise EmbeddedServerError(
                    f"embedded server exited with {proc.returncode}: {_last_line(paths.log)}")
            time.sleep(0.05)
        raise EmbeddedServerError(f"embedded server did not start in {timeout:.0f} s "
                                  f"(see {paths.log})")


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return lines[-1] if lines else "no log"
