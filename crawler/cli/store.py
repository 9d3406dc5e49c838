"""`gzarchive store serve --bind HOST:PORT`: the embedded store served to other machines.

A fleet's workers on several machines need one MongoDB. Without a real one, the data
directory's embedded store (SecantusDB, storage/mongo/server.py) can be served on an
address of one's choice until Ctrl-C / SIGTERM: the same server process the crawl
starts for itself, journaled, but bound where asked and never stopping when idle.
Local commands on the same data directory (``gzarchive query``, ``export``, a crawl
without ``--mongodb-uri``) join it as they join the embedded server. Its limits are
said when it starts: one process (every worker's writes go through it, and its
WiredTiger files have one owner), and no authentication (SecantusDB has SCRAM users,
but they must be created on an unauthenticated server first; not wired here), so a
bind address other than loopback is refused unless ``--allow-remote``.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from crawler.cli.common import EXIT_ERROR, EXIT_LOCKED, EXIT_OK, CliError, add_common
from crawler.cli.serve import is_loopback, parse_bind

DEFAULT_BIND = "127.0.0.1:27017"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("store", help="serve the embedded store to other machines")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    p = actions.add_parser("serve", help="serve the data directory's store on HOST:PORT "
                                         "until interrupted")
    p.add_argument("--bind", default=DEFAULT_BIND, metavar="HOST:PORT",
                   help=f"address to listen on (default {DEFAULT_BIND}); an address other "
                        "than loopback needs --allow-remote")
    p.add_argument("--allow-remote", action="store_true",
                   help="listen on a non-loopback address although the store has no "
                        "authentication (a trusted network only)")
    p.add_argument("--cache-size", default=None, metavar="SIZE",
                   help="WiredTiger cache, e.g. 2G (default $GZARCHIVE_STORE_CACHE, else "
                        "half of the RAM above 1 GB)")
    add_common(p)
    p.set_defaults(func=run)


def _client_host(host: str) -> str:
    """The address other machines use for a server bound to *host*."""
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - said in the warning
        return socket.gethostname()
    return f"[{host}]" if ":" in host else host


def run(args: argparse.Namespace) -> int:
    from storage.mongo.embedded import Paths, owner_is_alive, read_state

    host, port = parse_bind(args.bind)
    remote = not is_loopback(host)
    if remote and not args.allow_remote:
        raise CliError(f"refusing to serve the store on {host}: it has no authentication "
                       f"(anyone who reaches {host}:{port} reads and writes every "
                       "article); on a trusted network pass --allow-remote, or bind "
                       "127.0.0.1 and reach it through an SSH tunnel", 2)
    paths = Paths.of(args.data_dir)
    paths.leases.mkdir(parents=True, exist_ok=True)
    if owner_is_alive(paths):
        holder = read_state(paths) or {}
        raise CliError(f"the store of {args.data_dir} is already open (pid "
                       f"{holder.get('pid', '?')}, {holder.get('uri', 'starting')}): stop "
                       "what uses it, or wait for its server to stop by itself", EXIT_LOCKED)
    cmd = [sys.executable, "-m", "storage.mongo.server", "--data-dir", str(args.data_dir),
           "--host", host, "--port", str(port), "--stay"]
    if args.cache_size:
        cmd += ["--cache-size", args.cache_size]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT),
                                                    env.get("PYTHONPATH", "")) if p)
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)

    def forward(signum: int, frame: FrameType | None) -> None:
        if proc.poll() is None:
            proc.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    state: dict[str, Any] | None = None
    while proc.poll() is None and state is None:
        found = read_state(paths)
        state = found if found is not None and found.get("pid") == proc.pid else None
        time.sleep(0.05)
    if state is None:
        raise CliError(f"the store server exited with {proc.returncode} before serving "
                       f"(see {paths.log} or the lines above)", EXIT_ERROR)
    served = f"mongodb://{_client_host(host)}:{state['port']}/?directConnection=true"
    print(f"gzarchive store: serving {paths.store} on {served}", flush=True)
    print("gzarchive store: warning: this is ONE SecantusDB process (beta): every "
          "worker's writes go through it and it cannot be replicated; a large fleet "
          "wants a real MongoDB", file=sys.stderr, flush=True)
    print("gzarchive store: warning: no authentication: "
          + (f"anyone who reaches {host}:{state['port']} reads and writes the archive"
             if remote else "loopback only (other machines: an SSH tunnel, or --bind "
                            "ADDR:PORT --allow-remote on a trusted network)"),
          file=sys.stderr, flush=True)
    print(f"gzarchive store: workers: --mongodb-uri '{served}'; stop with Ctrl-C",
          flush=True)
    code = proc.wait()
    print(f"gzarchive store: stopped ({code})", flush=True)
    return EXIT_OK if code in (0, -signal.SIGTERM, -signal.SIGINT) else EXIT_ERROR
