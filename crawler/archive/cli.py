"""`gzarchive warc …`: verify, index, recover, pack (WACZ) and replay (pywb) the archive.

Registered like every sub-command (``add_parser(subparsers)``, see crawler/cli):
add ``crawler.archive.cli`` to ``crawler.cli.COMMANDS``. Works on DATA/warc.

- ``warc verify``  every record's digests, request/response pairing; one line per
  file; exit 1 when a file fails (or an unfinished ``.open`` file is present).
- ``warc recover`` repair ``.open`` files left by a crash (the crawl does it too); it
  takes the data directory's run lock, so it refuses (exit 6, naming the holder) while
  a crawl runs, and it cuts only files whose writer is gone (their lock is free).
- ``warc index``   rebuild DATA/warc/index.cdxj from the finished files (its segments merged).
- ``warc pack``    build a WACZ for ReplayWeb.page (pages: HTML 200 captures, or
  ``--pages FILE.jsonl``).
- ``warc replay``  start pywb (``wayback``) on 127.0.0.1 until interrupted (Ctrl-C or
  SIGTERM stop pywb too).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from crawler.cli.common import EXIT_ERROR, EXIT_LOCKED, EXIT_OK, CliError, add_common
from crawler.runlock import LockHeld, RunLock
from storage.warc.errors import WarcError
from storage.warc.index import INDEX_NAME, has_index, rebuild_index
from storage.warc.recovery import recover_and_reindex
from storage.warc.replay import collection_url, start_replay, stop_replay
from storage.warc.verify import verify_directory


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("warc", help="verify, pack or replay the WARC archive")
    warc_sub = parser.add_subparsers(dest="warc_command", metavar="ACTION")
    warc_sub.required = True

    verify = warc_sub.add_parser("verify", help="check digests and request/response pairs")
    verify.add_argument("--json", action="store_true", help="one JSON object per file")
    verify.set_defaults(func=run_verify)

    recover = warc_sub.add_parser(
        "recover", help="repair .open files left by a crash (refuses while a crawl runs)")
    recover.set_defaults(func=run_recover)

    index = warc_sub.add_parser("index", help="rebuild index.cdxj")
    index.set_defaults(func=run_index)

    pack = warc_sub.add_parser("pack", help="build a WACZ for ReplayWeb.page")
    pack.add_argument("-o", "--output", type=Path, metavar="FILE",
                      help="the WACZ to write (default DATA/archive.wacz)")
    pack.add_argument("--pages", type=Path, metavar="FILE",
                      help="pages.jsonl lines to list ({url, ts, title}; default: every "
                           "HTML page archived, at its latest capture)")
    pack.add_argument("--title", default="gzarchive",
                      help="title of the collection in the WACZ (default gzarchive)")
    pack.set_defaults(func=run_pack)

    replay = warc_sub.add_parser("replay", help="replay with pywb on 127.0.0.1")
    replay.add_argument("--port", type=int, default=8080,
                        help="port on 127.0.0.1 for pywb (default 8080)")
    replay.set_defaults(func=run_replay)

    for p in (verify, recover, index, pack, replay):
        add_common(p)


def _warc_dir(args: argparse.Namespace) -> Path:
    path = Path(args.data_dir) / "warc"
    if not path.is_dir():
        raise CliError(f"no WARC directory at {path}")
    return path


def run_verify(args: argparse.Namespace) -> int:
    reports = verify_directory(_warc_dir(args))
    if not reports:
        raise CliError("no WARC files to verify")
    for r in reports:
        if args.json:
            print(json.dumps({
                "file": r.path.name, "ok": r.ok, "records": r.records, "by_type": r.by_type,
                "digest_failures": r.digest_failures,
                "requests_without_response": r.requests_without_response,
                "responses_without_request": r.responses_without_request,
                "errors": r.errors, "open_file": r.open_file}, ensure_ascii=False))
            continue
        if r.open_file:
            print(f"OPEN  {r.path.name}: unfinished (crawl running, or run `warc recover`)")
            continue
        status = "OK  " if r.ok else "FAIL"
        print(f"{status}  {r.path.name}: {r.records} records, "
              f"{len(r.digest_failures)} digest failures, "
              f"{len(r.requests_without_response)} requests without response, "
              f"{len(r.responses_without_request)} responses without request"
              + (f", errors: {'; '.join(r.errors)}" if r.errors else ""))
        for line in (r.digest_failures + r.requests_without_response
                     + r.responses_without_request)[:20]:
            print(f"      {line}")
    bad = sum(not r.ok for r in reports)
    print(f"{len(reports)} files, {bad} with problems")
    return EXIT_OK if bad == 0 else EXIT_ERROR


def run_recover(args: argparse.Namespace) -> int:
    warc_dir = _warc_dir(args)
    lock = RunLock(args.data_dir)
    try:
        lock.acquire()
    except LockHeld as exc:
        raise CliError(f"{exc}; not recovering while it writes", EXIT_LOCKED) from exc
    try:
        # The run lock keeps crawls out; the per-file locks (storage/warc/openlock.py)
        # also keep out any other writer, e.g. one that takes no run lock.
        reports = recover_and_reindex(warc_dir)
    finally:
        lock.release()
    done = [r for r in reports if r.recovered]
    for r in reports:
        if r.recovered:
            print(f"{r.action:9} {r.path.name}: {r.records} records kept, "
                  f"{r.bytes_dropped} bytes dropped")
        else:
            print(f"{r.action:9} {r.path.name}: a live process is writing it; left alone")
    print(f"{len(done)} .open files recovered"
          + (f", {len(reports) - len(done)} in use left alone" if len(done) < len(reports)
             else ""))
    return EXIT_OK


def run_index(args: argparse.Namespace) -> int:
    path = rebuild_index(_warc_dir(args))
    print(f"{path}: {sum(1 for _ in open(path, encoding='utf-8'))} lines")
    return EXIT_OK


def run_pack(args: argparse.Namespace) -> int:
    # wacz is ~0.15 s of imports that every other command (crawl first) need not pay.
    from storage.warc.pack import pack_wacz

    warc_dir = _warc_dir(args)
    pages = None
    if args.pages:
        lines = args.pages.read_text(encoding="utf-8").splitlines()
        pages = [json.loads(line) for line in lines if line.strip()]
        pages = [p for p in pages if "url" in p]
    if not has_index(warc_dir / INDEX_NAME):
        rebuild_index(warc_dir)
    out = args.output or Path(args.data_dir) / "archive.wacz"
    try:
        path = pack_wacz(warc_dir, out, pages, title=args.title)
    except WarcError as exc:
        raise CliError(str(exc)) from exc
    print(path)
    return EXIT_OK


def run_replay(args: argparse.Namespace) -> int:
    warc_dir = _warc_dir(args)
    try:
        proc = start_replay(warc_dir, args.port)
    except WarcError as exc:
        raise CliError(str(exc)) from exc
    print(f"pywb replaying {warc_dir} at {collection_url(args.port)} (Ctrl-C to stop)",
          file=sys.stderr)

    def _stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt  # SIGTERM: stop pywb as Ctrl-C does, no orphan on the port

    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        signal.signal(signal.SIGTERM, previous)
        stop_replay(proc)

