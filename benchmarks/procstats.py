"""Wall time, CPU seconds and peak RSS of a command and every process it starts.

Children exit (Chromium) or outlive their parent (the embedded store server stops itself
a few seconds after its last client), so the tree is sampled while it runs: every process
seen is kept and re-read until it exits; its CPU is the last user+system read. The total
is exact where the kernel can tell: the CPU of the command and of every descendant it
reaped (``getrusage(RUSAGE_CHILDREN)`` before and after) plus the sampled CPU of the
processes that outlived it; but processes orphaned earlier (Chromium's helpers) are reaped
by init and missed there, so the total is the larger of that and the sum of the samples.
"""

from __future__ import annotations

import json
import resource
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

MiB = 1024 * 1024


@dataclass
class Usage:
    exit_code: int
    wall: float
    cpu_reaped: float                # the command and the descendants it reaped (exact)
    cpu_root: float                  # the command's own process (sampled)
    cpu_others: dict[str, float] = field(default_factory=dict)  # process name -> CPU s
    peak_rss_root: int = 0
    peak_rss_all: int = 0            # largest sum of RSS over one sample of the tree
    cpu_outlived: float = 0.0        # processes alive when the command exited (sampled)
    peak_rss_by_name: dict[str, int] = field(default_factory=dict)  # largest single process
    processes: int = 1
    stdout: str = ""
    stderr: str = ""

    @property
    def cpu(self) -> float:
        sampled = self.cpu_root + sum(self.cpu_others.values())
        return max(self.cpu_reaped + self.cpu_outlived, sampled)


def _name(p: psutil.Process) -> str:
    # The headless shell's processes are "chromium-headle" (15 characters): one name
    # for Chromium whichever build runs.
    name = p.name()
    return "chromium" if name.startswith("chromium") else name


def store_pid(data: Path) -> int | None:
    """The embedded store server's pid from its state file under *data*, if any."""
    try:
        return int(json.loads((data / "db" / "server.json").read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


def measure(cmd: list[str], cwd: Path, extra_pids: Callable[[], int | None] | None = None,
            interval: float = 0.1, linger: float = 20.0, timeout: float = 3600.0) -> Usage:
    """Run *cmd*; sample its process tree (and the pid *extra_pids* returns) until all exit.

    The wall time is the command's; the lingering processes' CPU is still counted."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = psutil.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out: dict[str, str] = {}
    readers = [threading.Thread(target=lambda k=k, s=s: out.__setitem__(k, s.read()), daemon=True)
               for k, s in (("stdout", proc.stdout), ("stderr", proc.stderr))]
    for t in readers:
        t.start()
    seen: dict[tuple[int, float], psutil.Process] = {}
    cpu: dict[tuple[int, float], tuple[str, float]] = {}
    peak_root = peak_all = 0
    root_cpu = 0.0
    wall = None
    outlived: set[tuple[int, float]] = set()
    named: dict[int, str] = {}
    peak_by: dict[str, int] = {}
    deadline = start + timeout
    while True:
        if wall is None and proc.poll() is not None:
            wall = time.perf_counter() - start
            outlived = {k for k, p in seen.items() if p.is_running()}
        if wall is None:
            try:
                times = proc.cpu_times()
                root_cpu = times.user + times.system
                rss = proc.memory_info().rss
                peak_root = max(peak_root, rss)
                kids = proc.children(recursive=True)
            except psutil.Error:
                kids, rss = [], 0
        else:
            kids, rss = [], 0
        extra = extra_pids() if extra_pids else None
        if extra is not None:
            try:
                kids.append(psutil.Process(extra))
                named.setdefault(extra, "store server")
            except psutil.Error:
                pass  # already gone
        for kid in kids:
            try:
                seen.setdefault((kid.pid, kid.create_time()), kid)
            except psutil.Error:
                continue
        total = rss
        for key, p in list(seen.items()):
            try:
                with p.oneshot():
                    t = p.cpu_times()
                    cpu[key] = (named.get(p.pid) or _name(p), t.user + t.system)
                    prss = p.memory_info().rss
                    total += prss
                    pname = cpu[key][0]
                    peak_by[pname] = max(peak_by.get(pname, 0), prss)
            except psutil.Error:
                del seen[key]  # exited: keep its last reading
        peak_all = max(peak_all, total)
        now = time.perf_counter()
        if wall is not None and (not seen or now - start - wall > linger):
            break
        if now > deadline:
            proc.kill()
        time.sleep(interval)
    for t in readers:
        t.join(timeout=5)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    reaped = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    others: dict[str, float] = {}
    for name, seconds in cpu.values():
        others[name] = others.get(name, 0.0) + seconds
    return Usage(exit_code=proc.returncode, wall=wall or 0.0, cpu_reaped=reaped,
                 cpu_outlived=sum(cpu[k][1] for k in outlived if k in cpu), cpu_root=root_cpu, cpu_others=others,
                 peak_rss_root=peak_root, peak_rss_all=peak_all, processes=1 + len(cpu),
                 peak_rss_by_name=peak_by,
                 stdout=out.get("stdout", ""), stderr=out.get("stderr", ""))
