"""Replay the archive locally with pywb (``wayback``), bound to 127.0.0.1 only.

pywb pins ``redis==2.10.6`` and so lives in its own venv; it is found as a command:
``$GZARCHIVE_PYWB_BIN`` (a bin directory), then ``.venv-pywb/bin`` of the project,
then ``PATH``. The collection is described in a ``config.yaml`` in a pywb root
directory, pointing straight at the WARC directory, which is also its index directory:
pywb loads ``index.cdxj`` and its segments ``index.*.cdxj`` (storage/warc/index.py) and
merges them at lookup (nothing is copied, and files indexed later are replayable
without a restart).
Replay URLs look like ``http://127.0.0.1:PORT/COLL/2026id_/http://host/path``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from .errors import ToolNotFound, WarcError
from .index import INDEX_NAME, has_index, rebuild_index

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_COLLECTION = "gzarchive"


def find_pywb_tool(name: str = "wayback") -> Path:
    """Locate ``wayback`` / ``wb-manager``; raise :class:`ToolNotFound` otherwise."""
    candidates: list[Path] = []
    env = os.environ.get("GZARCHIVE_PYWB_BIN")
    if env:
        candidates.append(Path(env) / name)
    candidates.append(PROJECT_ROOT / ".venv-pywb" / "bin" / name)
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found:
        return Path(found)
    raise ToolNotFound(
        f"{name} not found: install pywb in its own venv "
        "(python3 -m venv .venv-pywb && .venv-pywb/bin/pip install pywb) "
        "or set GZARCHIVE_PYWB_BIN")


def write_config(warc_dir: Path, root: Path, collection: str = DEFAULT_COLLECTION) -> Path:
    """Write ``root/config.yaml`` with one collection over ``warc_dir``."""
    warc_dir = Path(warc_dir).resolve()
    if not has_index(warc_dir / INDEX_NAME):
        rebuild_index(warc_dir)
    root.mkdir(parents=True, exist_ok=True)
    config = root / "config.yaml"
    config.write_text(
        "# written by storage.warc.replay\n"
        "collections:\n"
        f"  {collection}:\n"
        # JSON strings are valid YAML scalars, whatever the path contains; a directory:
        # every *.cdxj in it (main and segments), each binary-searched, heap-merged
        f"    index_paths: {json.dumps(str(warc_dir) + os.sep)}\n"
        f"    archive_paths: {json.dumps(str(warc_dir) + os.sep)}\n"
        "framed_replay: false\n",
        encoding="utf-8")
    return config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None,
                  ) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise WarcError(f"wayback exited with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise WarcError(f"wayback did not listen on 127.0.0.1:{port} within {timeout}s")


# pywb's directory index source prints "Dir … unchanged" on every lookup (a line per
# replayed resource in the log of a long-running replay): the same entry point as the
# `wayback` script, with that one message dropped.
_QUIET_WAYBACK = """\
import builtins, sys
import pywb.warcserver.index.aggregator as aggregator
def _print(*args, **kwargs):
    text = str(args[0]) if len(args) == 1 else ''
    if not (text.startswith('Dir ') and text.endswith(' unchanged')):
        builtins.print(*args, **kwargs)
aggregator.print = _print
from pywb.apps.cli import wayback
sys.argv[0] = 'wayback'
sys.exit(wayback())
"""


def wayback_argv(wayback: Path, port: int) -> list[str]:
    """The command line of ``wayback -p PORT -b 127.0.0.1`` (quiet per lookup when the
    interpreter of its venv sits beside it, as with `.venv-pywb`)."""
    python = wayback.parent / "python"
    head = [str(python), "-c", _QUIET_WAYBACK] if python.is_file() else [str(wayback)]
    return [*head, "-p", str(port), "-b", "127.0.0.1"]


def start_replay(warc_dir: Path, port: int = 0, *, root: Path | None = None,
                 collection: str = DEFAULT_COLLECTION, wait: bool = True,
                 log_path: Path | None = None) -> subprocess.Popen[bytes]:
    """Start ``wayback -p PORT -b 127.0.0.1`` over ``warc_dir``; return the process.

    ``port=0`` picks a free port (read it back from ``proc.args``). The caller stops
    the process (``proc.terminate()``).
    """
    wayback = find_pywb_tool("wayback")
    warc_dir = Path(warc_dir).resolve()
    root = Path(root) if root else warc_dir.parent / "pywb"
    write_config(warc_dir, root, collection)
    port = port or free_port()
    log = open(log_path or root / "wayback.log", "ab")  # noqa: SIM115 - owned by the child
    try:
        proc = subprocess.Popen(
            wayback_argv(wayback, port),
            cwd=root, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    finally:
        log.close()
    if wait:
        try:
            wait_for_port(port, proc=proc)
        except WarcError:
            proc.terminate()
            raise
    return proc


def stop_replay(proc: subprocess.Popen[bytes]) -> None:
    """Stop a pywb process started by ``start_replay``: SIGTERM, then SIGKILL after 10 s."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def collection_url(port: int, collection: str = DEFAULT_COLLECTION) -> str:
    """The pywb page of a collection (search, list of captures)."""
    return f"http://127.0.0.1:{port}/{collection}/"


def replay_url(port: int, url: str, timestamp: str = "", collection: str = DEFAULT_COLLECTION,
               modifier: str = "") -> str:
    """The pywb URL of ``url`` (``modifier`` e.g. ``id_`` glued to the timestamp;
    neither: the latest capture)."""
    when = f"{timestamp}{modifier}/" if timestamp or modifier else ""
    return f"{collection_url(port, collection)}{when}{url}"
