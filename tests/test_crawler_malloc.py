"""The crawl process caps glibc's malloc arenas (crawler/run/malloc.py), measured by
glibc's own report (malloc_info: one <heap> per arena) in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT

SCRIPT = r"""
import ctypes, ctypes.util, sys, tempfile, threading
if sys.argv[1] == "limit":
    from crawler.run.malloc import limit_arenas
    assert limit_arenas()
libc = ctypes.CDLL(ctypes.util.find_library("c"))
started, release = threading.Barrier(7), threading.Event()
def work():
    kept = [bytes(20_000) for _ in range(50)]  # past pymalloc: glibc malloc
    started.wait(); release.wait()
threads = [threading.Thread(target=work) for _ in range(6)]
for t in threads: t.start()
started.wait()
with tempfile.TemporaryFile() as fh:
    libc.fdopen.restype = ctypes.c_void_p
    stream = libc.fdopen(fh.fileno(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(stream))
    libc.fflush(ctypes.c_void_p(stream))
    fh.seek(0)
    print(fh.read().decode().count("<heap nr="))
release.set()
for t in threads: t.join()
"""


def heaps(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60, check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_threads_share_at_most_two_arenas() -> None:
    assert heaps("default") > 2  # six threads allocating at once: arenas of their own
    assert heaps("limit") <= 2
