"""Fewer glibc malloc arenas for the crawl process: its RSS stops growing with the run.

glibc gives each thread that allocates while another holds the heap lock an arena of its
own (up to 8 per core). The crawl's pipelines work in threads (``asyncio.to_thread``:
near-duplicate checks, store batches, the search index catch-up), so memory freed in
one arena is not reused by the others and the process keeps the high-water mark of
each: peak RSS of a 2,000-article crawl 406 MiB with the default, 272 MiB with two
arenas (benchmarks/memory.py, issue #15). ``MALLOC_ARENA_MAX`` in the environment, if
set, wins; elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_ARENA_MAX = -8  # glibc malloc.h
ARENAS = 2


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas (before the threads start); whether it was set."""
    if not sys.platform.startswith("linux") or os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt arenas)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, arenas))
