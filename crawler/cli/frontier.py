"""`gzarchive frontier status|clear --redis-url URL`: the shared frontier of a fleet.

``status`` shows requests queued, in flight (taken by a worker, not yet done) and held
(done, their article waiting for the store), reclaimed from workers that died, per host
and per worker; ``--json`` for a program. ``clear`` deletes the frontier (queue,
duplicate filter, leases, shared crawl state); it refuses while a worker is alive
unless ``--force``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from crawler.cli.common import EXIT_LOCKED, EXIT_STORE, CliError, add_common


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("frontier", help="show or clear a shared frontier (Redis)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    for action, text in (("status", "queued, in flight, reclaimed; per host and worker"),
                         ("clear", "delete the frontier and its shared crawl state")):
        p = actions.add_parser(action, help=text)
        p.add_argument("--redis-url", required=True, metavar="URL",
                       help="the frontier's Redis (redis://host:port/db)")
        p.add_argument("--frontier", default="default", metavar="NAME",
                       help="the frontier's name (default: default)")
        if action == "status":
            p.add_argument("--json", action="store_true", help="one JSON object")
        else:
            p.add_argument("--force", action="store_true",
                           help="clear even while workers are alive")
        add_common(p)  # every command takes them; the frontier is in Redis only
        p.set_defaults(func=run)


def _client(url: str) -> Any:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=5)
        client.ping()
    except (redis.RedisError, ValueError) as exc:
        raise CliError(f"redis unreachable at {url}: {exc}", EXIT_STORE) from exc
    return client


def run(args: argparse.Namespace) -> int:
    from crawler.fleet.status import as_dict, frontier_status
    from storage.redis_frontier import FleetKeys, Frontier

    client = _client(args.redis_url)
    status = frontier_status(client, args.frontier)
    if args.action == "clear":
        alive = [w.worker for w in status.workers if w.alive]
        if alive and not args.force:
            raise CliError(f"{len(alive)} worker(s) alive on frontier {args.frontier!r} "
                           f"({', '.join(alive)}): stop them or pass --force", EXIT_LOCKED)
        n = Frontier(client, FleetKeys(args.frontier), worker="").clear()
        print(f"frontier {args.frontier}: cleared ({n} key(s))")
        return 0
    if args.json:
        print(json.dumps(as_dict(status), ensure_ascii=False))
        return 0
    print(f"frontier {status.name} ({args.redis_url}): queued {status.queued}, in flight "
          f"{status.in_flight}, held for the store {status.held}, reclaimed "
          f"{status.reclaimed}, articles pending {status.pending_articles}"
          + ("" if status.seeded else " (never seeded)"))
    if status.crawl_lease:
        print(f"seeding crawl: {status.crawl_lease}")
    for host, n in status.hosts.most_common():
        print(f"  host {host}: {n} request(s)")
    if status.workers:
        print(f"  {'worker':<34} {'role':<7} {'alive':<5} {'in flight':>9} {'held':>5} "
              f"{'done':>6} {'reclaimed':>9}  state")
    for w in status.workers:
        print(f"  {w.worker:<34} {w.role:<7} {'yes' if w.alive else 'no':<5} "
              f"{w.in_flight:>9} {w.held:>5} {w.done:>6} {w.reclaimed:>9}  {w.state}")
    return 0
