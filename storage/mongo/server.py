"""The embedded store's server process: ``python -m storage.mongo.server --data-dir DIR``.

Owns ``DIR/db/store`` (SecantusDB over WiredTiger, every commit synced), listens on
127.0.0.1 on a free port, publishes ``DIR/db/server.json`` and stops by itself once no
live process holds a lease for ``--idle-seconds``. Started by ``EmbeddedServer.acquire``;
see embedded.py for the protocol. Refuses to start (exit 3) when another process owns
the files.

The WiredTiger cache is ``--cache-size`` (default: the environment variable
``GZARCHIVE_STORE_CACHE``, else MongoDB's own rule, half of the RAM above 1 GB, at least
256 MB). It grows only as pages are read. The keyword index is no longer in the store
(a tantivy index beside it, storage/search), so writes no longer need a cache that
holds ~930 index keys per article: benchmarks/mongo_store.py --layouts measures them.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import select
import signal
import socket
import time
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from filelock import FileLock, Timeout

from storage.mongo.embedded import Paths, live_leases, read_state, write_json_atomic

logger = logging.getLogger("storage.mongo.server")

EXIT_OWNED = 3
CACHE_ENV = "GZARCHIVE_STORE_CACHE"
MB = 1024 * 1024


def default_cache_size() -> str:
    """``$GZARCHIVE_STORE_CACHE``, else as mongod sizes its cache: 50 % of (RAM - 1 GB),
    at least 256 MB."""
    if os.environ.get(CACHE_ENV):
        return os.environ[CACHE_ENV]
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{max(256, (ram - 1024 * MB) // 2 // MB)}M"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m storage.mongo.server")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--idle-seconds", type=float, default=3.0)
    parser.add_argument("--poll", type=float, default=1.0)
    # `gzarchive store serve` (crawler/cli/store.py): an address of its choice, no idle stop.
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--stay", action="store_true", help="serve until SIGTERM/SIGINT")
    parser.add_argument("--cache-size", default=None,
                        help=f"WiredTiger cache, e.g. 512M or 8G (default ${CACHE_ENV}, "
                             "else half of the RAM above 1 GB)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(process)d %(levelname)s %(message)s")
    paths = Paths.of(args.data_dir)
    paths.leases.mkdir(parents=True, exist_ok=True)
    owner = os.open(paths.owner_lock, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        logger.error("refusing to start: another process owns %s", paths.store)
        os.close(owner)
        return EXIT_OWNED
    try:
        return _serve(paths, args.idle_seconds, args.poll,
                      args.cache_size or default_cache_size(), args.host, args.port, args.stay)
    finally:
        os.close(owner)


def production_server(path: str, cache_size: str, host: str = "127.0.0.1",
                      port: int = 0) -> Any:
    """A SecantusDB server on ``path`` as the embedded store runs it (not started):
    127.0.0.1 on a free port, every commit synced, standalone, no test commands,
    ``cache_size`` (usually :func:`default_cache_size`)."""
    from secantus import SecantusDBServer  # only the owner process loads the engine

    return SecantusDBServer(host=host, port=port, storage_path=path,
                            sync_on_commit=True, durable=True, replica_set_name=None,
                            enable_test_commands=False, cache_size=cache_size)


class _StopSignals:
    """SIGTERM/SIGINT noted in a plain list, not a threading.Event: the handler runs on
    the main thread between two bytecodes, and a second signal landing inside the first
    handler's Event.set (`gzarchive store serve` forwards SIGTERM and `kill -- -PGID`
    sends it too) would wait forever on the lock that set holds. The wait between polls
    sleeps in ``select`` on the interpreter's wakeup socket, so a signal ends it at once
    and an idle server does not wake up to look."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)
        signal.set_wakeup_fd(self._write.fileno(), warn_on_full_buffer=False)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._note)

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)

    def wait(self, seconds: float) -> bool:
        """Wait up to *seconds*; True once a stop signal came."""
        if not self.received:
            select.select([self._read], [], [], seconds)
            with contextlib.suppress(BlockingIOError):
                while self._read.recv(512):
                    pass
        return bool(self.received)

    def close(self) -> None:
        signal.set_wakeup_fd(-1)
        self._read.close()
        self._write.close()


def _serve(paths: Paths, idle_seconds: float, poll: float, cache_size: str,
           host: str = "127.0.0.1", port: int = 0, stay: bool = False) -> int:
    server = production_server(str(paths.store), cache_size, host, port)
    server.start()
    host, port = server.address
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
    uri = f"mongodb://{local}:{port}/?directConnection=true"
    write_json_atomic(paths.state, {"pid": os.getpid(), "port": port, "uri": uri,
                                    "started": datetime.now(UTC).isoformat()})
    logger.info("serving %s on %s (cache %s)", paths.store, uri, cache_size)

    signals = _StopSignals()
    lock = FileLock(str(paths.startup_lock))
    idle_since: float | None = None
    try:
        while True:
            if signals.wait(poll):
                lock.acquire(timeout=10)  # best effort: let a joining client finish first
                break
            if stay or live_leases(paths, clean=True):
                idle_since = None
                continue
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since < idle_seconds:
                continue
            try:
                lock.acquire(timeout=0)
            except Timeout:
                continue  # a client is joining right now
            if live_leases(paths):  # joined between the check and the lock
                lock.release()
                idle_since = None
                continue
            logger.info("no live lease for %.1f s: stopping", idle_seconds)
            break
    except Timeout:
        logger.warning("stopping without the startup lock")
    finally:
        state = read_state(paths)
        if state is not None and state.get("pid") == os.getpid():
            paths.state.unlink(missing_ok=True)
        server.stop()
        signals.close()
        logger.info("stopped")
        if lock.is_locked:
            lock.release()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
