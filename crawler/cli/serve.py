"""`gzarchive serve`: the reading room, a read-only web app over the archive (crawler/web).

Binds loopback by default; any other address needs ``--token`` (or GZARCHIVE_TOKEN), and
without one the command refuses before opening anything (exit 2, one line). The store is
opened as ``query`` opens it: read-only, never created, migrated or indexed. Archived
pages replay through pywb, started here as a child on a loopback port and stopped on
exit (``--replay``; crawler/web/pywb.py), or through the built-in viewer without pywb.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from typing import Any

from crawler.cli.common import EXIT_OK, EXIT_USAGE, CliError, add_common, open_reader
from storage.warc.errors import WarcError

DEFAULT_BIND = "127.0.0.1:8080"


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("serve", help="the reading room: browse, search and replay the "
                                          "archive in a web browser (read-only)")
    parser.add_argument("--bind", default=DEFAULT_BIND, metavar="HOST:PORT",
                        help=f"address to listen on (default {DEFAULT_BIND}); an address "
                             "other than loopback needs --token")
    parser.add_argument("--token", default=os.environ.get("GZARCHIVE_TOKEN") or None,
                        help="every request must carry it (Authorization: Bearer T, or "
                             "?token=T once, then a cookie); default env GZARCHIVE_TOKEN")
    parser.add_argument("--replay", choices=("auto", "pywb", "builtin"), default="auto",
                        help="replay archived pages with pywb (from .venv-pywb, as "
                             "`warc replay`), or the built-in viewer (no scripts); default "
                             "auto: pywb when it is installed")
    add_common(parser)
    parser.set_defaults(func=run)


def parse_bind(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) -> (host, port); CliError (usage) otherwise."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host:
        raise CliError(f"--bind {value!r}: expected HOST:PORT", EXIT_USAGE)
    host = host.removeprefix("[").removesuffix("]")
    try:
        port = int(port_text)
    except ValueError:
        raise CliError(f"--bind {value!r}: the port is not a number", EXIT_USAGE) from None
    if not 0 <= port <= 65535:
        raise CliError(f"--bind {value!r}: port out of range", EXIT_USAGE)
    return host, port


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


def run(args: argparse.Namespace) -> int:
    host, port = parse_bind(args.bind)
    if not is_loopback(host) and not args.token:
        raise CliError(f"refusing to serve on {host} without --token: only loopback "
                       "addresses are served without one", EXIT_USAGE)
    import uvicorn

    from crawler.web.app import close_app, create_app, start_replay

    with open_reader(args) as repo:
        try:
            app = create_app(repo, args.data_dir / "warc", token=args.token,
                             replay=args.replay)
        except ValueError as exc:
            raise CliError(f"--replay {args.replay}: {exc}", EXIT_USAGE) from None
        config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                                access_log=False, server_header=False)
        server = uvicorn.Server(config)
        shown = f"[{host}]" if ":" in host else host
        print(f"gzarchive serve: the reading room of {args.data_dir} at http://{shown}:{port}/"
              + (" (token required)" if args.token else "") + " — Ctrl-C stops it",
              file=sys.stderr, flush=True)
        try:
            start_replay(app)
        except WarcError as exc:  # no index yet: replay says so, the rest is served
            print(f"gzarchive serve: pywb not started: {exc}", file=sys.stderr, flush=True)
        try:
            server.run()
        finally:
            close_app(app)
    return EXIT_OK
