"""Who is writing an ``.open`` WARC file: a ``flock`` held by its writer.

The writer takes an exclusive ``flock`` on each ``.warc.gz.open`` file as it creates it
and keeps it until the file is renamed to ``.warc.gz``. The kernel drops the lock when
the writer's process dies (crash, SIGKILL), so "the lock can be taken" means exactly
"nobody is writing this file any more": crash recovery (storage/warc/recovery.py)
cuts only such files, whichever process or command runs it.

Both sides check that the path still names the inode they locked: a file renamed or
deleted between ``open()`` and ``flock()`` is not the file at that path any more.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import BinaryIO


def _names(fd: int, path: Path) -> bool:
    """True when ``path`` is the file open as ``fd``."""
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (mine.st_dev, mine.st_ino)


def lock_for_writing(fh: BinaryIO, path: Path) -> bool:
    """Lock a file the writer has just created (blocking: at worst a recovery of it is
    running). False when recovery removed or renamed it meanwhile: make another."""
    fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
    return _names(fh.fileno(), path)


def lock_if_abandoned(path: Path) -> int | None:
    """A locked read-write descriptor of ``path`` when no writer holds it, else None
    (a live writer holds the lock, or the file is gone). Close it to release."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    if not _names(fd, path):  # finished (renamed) or recovered by someone else meanwhile
        os.close(fd)
        return None
    return fd


def finish_cut(path: Path, end: int, final: Path) -> bool:
    """Cut the ``.open`` file ``path`` back to ``end`` bytes and rename it ``final``,
    under its lock: how a writer that failed mid-exchange hands in what it wrote whole.
    The writer has closed its own descriptor (and so its lock) first; if a recovery got
    in between, it did the same cut, and False is returned."""
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if not _names(fd, path):
            return False
        os.ftruncate(fd, end)
        os.fsync(fd)
        os.replace(path, final)
        return True
    finally:
        os.close(fd)
