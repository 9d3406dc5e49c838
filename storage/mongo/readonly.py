"""Read-only access to an embedded store: serve an existing archive, never create one.

``query``, ``show``, ``stats`` and ``export`` must not invent an archive on a mistyped
data directory, and must work on an archive they cannot write to (a copy on a DVD, a
colleague's mount). :func:`existing_store` yields the URI of a server on the store of a
data directory:

- no store there: :class:`~storage.mongo.errors.NoStore`, and nothing is created;
- a writable store: the shared embedded server (started or joined, see embedded.py);
- a store that cannot be written: a server on a temporary copy of its files, stopped
  and removed on exit. SecantusDB (0.7.0b3) has no read-only mode: its WiredTiger
  connection is always opened with ``create`` and writes its lock, journal and
  checkpoints, and WiredTiger's own ``readonly=true`` fails on a read-only mount too.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from storage.mongo.embedded import EmbeddedServer, Paths, owner_is_alive
from storage.mongo.errors import EmbeddedServerError, NoStore

logger = logging.getLogger(__name__)

#: The file every WiredTiger home holds; its absence means there is no store.
WT_MARKER = "WiredTiger"
#: Seconds to wait for the server of a temporary copy to stop before removing it.
STOP_TIMEOUT = 20.0


def has_store(data_dir: Path | str) -> bool:
    """Whether ``data_dir`` holds an embedded store (without creating anything)."""
    return (Paths.of(data_dir).store / WT_MARKER).is_file()


def writable(paths: Paths) -> bool:
    """Whether the server could open the store in place: its directories and files.

    ``os.access`` answers for the caller's uid (root passes file modes) and reports a
    read-only filesystem for everyone.
    """
    dirs = (paths.root, paths.store, paths.leases)
    if not all(os.access(d, os.W_OK) for d in dirs if d.exists()):
        return False
    return all(os.access(f, os.W_OK) for f in paths.store.iterdir() if f.is_file())


def store_size(paths: Paths) -> int:
    return sum(f.stat().st_size for f in paths.store.iterdir() if f.is_file())


@contextmanager
def existing_store(data_dir: Path | str, *, idle_seconds: float = 3.0,
                   on_copy: Callable[[int], None] | None = None) -> Iterator[str]:
    """The URI of a server on the existing store of ``data_dir`` (see the module doc).

    ``on_copy(size_in_bytes)`` is called before a read-only store is copied.
    Raises NoStore (nothing there) or EmbeddedServerError (copy or start failed).
    """
    paths = Paths.of(data_dir)
    if not has_store(data_dir):
        raise NoStore(f"no archive at {data_dir} (no store under {paths.store})")
    if writable(paths):
        with EmbeddedServer.acquire(data_dir, idle_seconds=idle_seconds) as lease:
            yield lease.uri
        return
    with _temporary_copy(paths, on_copy) as copy_dir:
        lease = EmbeddedServer.acquire(copy_dir, idle_seconds=0.0)
        try:
            yield lease.uri
        finally:
            lease.release()
            _stop(lease.server_pid, Paths.of(copy_dir))


@contextmanager
def _temporary_copy(paths: Paths, on_copy: Callable[[int], None] | None) -> Iterator[Path]:
    size = store_size(paths)
    tmp_root = Path(tempfile.gettempdir())
    free = shutil.disk_usage(tmp_root).free
    if size * 1.1 > free:
        raise EmbeddedServerError(
            f"{paths.root.parent} is read-only and its store ({size / 2**20:.0f} MB) does "
            f"not fit in {tmp_root} ({free / 2**20:.0f} MB free): set TMPDIR to a larger disk")
    if on_copy is not None:
        on_copy(size)
    with tempfile.TemporaryDirectory(prefix="gzarchive-ro-", ignore_cleanup_errors=True) as tmp:
        target = Paths.of(tmp)
        try:
            shutil.copytree(paths.store, target.store)
        except OSError as exc:
            raise EmbeddedServerError(
                f"cannot copy the read-only store {paths.store} to {tmp}: {exc}") from exc
        logger.info("serving a temporary copy of %s from %s", paths.store, tmp)
        yield Path(tmp)


def _stop(pid: int, paths: Paths) -> None:
    """Stop the server of a temporary copy and wait until it let go of the files.

    SIGKILL: the copy is thrown away, and a clean stop takes SecantusDB 2 s.
    """
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT
    while owner_is_alive(paths):
        if time.monotonic() > deadline:
            logger.warning("server %d of the temporary copy %s did not stop in %.0f s",
                           pid, paths.root, STOP_TIMEOUT)
            return
        time.sleep(0.05)
