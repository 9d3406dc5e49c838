"""`gzarchive stats`: articles per section and per month, and the last crawl runs."""

from __future__ import annotations

import argparse
import time
from typing import Any

from crawler.cli.common import EXIT_OK, add_common, open_reader, open_store


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("stats", help="counts per section and month, last runs")
    parser.add_argument("--runs", type=int, default=5, help="how many recent runs to list (default 5)")
    parser.add_argument("--recount", action="store_true",
                        help="rebuild the kept counts from a scan of every article first")
    add_common(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if getattr(args, "recount", False):
        with open_store(args) as repo:
            start = time.monotonic()
            repo.counts.recount()
            console.print(f"counts rebuilt from every article in "
                          f"{time.monotonic() - start:.1f} s")
    with open_reader(args) as repo:
        kept = repo.counts.load()
        counts = kept or repo.counts.scan()  # a store not yet upgraded: counted now
        total = counts.total
        sections = counts.by_section
        months = counts.by_month
        runs = _last_runs(repo, args.runs)
    console.print(f"[bold]{total}[/bold] articles stored")
    if kept is None:
        console.print("(counted by a scan: this store keeps no counts yet; the next "
                      "`gzarchive crawl` or `gzarchive stats --recount` builds them)")
    console.print(_counts_table("Articles per section", "section", sections))
    console.print(_counts_table("Articles per month (published, Beijing time)", "month",
                                months))
    if runs:
        table = Table(title="Last crawl runs")
        for col in ("started", "finished", "exit", "new", "updated", "failures"):
            table.add_column(col)
        for run_doc in runs:
            counts = run_doc.get("counts") or {}
            failures = run_doc.get("errors") or {}
            table.add_row(str(run_doc.get("started_at", ""))[:19], str(run_doc.get("finished_at", ""))[:19],
                          str(run_doc.get("exit_status", "")), str(counts.get("new", "")),
                          str(counts.get("updated", "")), str(sum(
                              v.get("count", 0) for v in failures.values()
                              if isinstance(v, dict))))
        console.print(table)
    return EXIT_OK


def _counts_table(title: str, key: str, counts: dict[str, int]) -> Any:
    from rich.table import Table

    table = Table(title=title)
    table.add_column(key)
    table.add_column("articles", justify="right")
    for name, count in counts.items():
        table.add_row(str(name), str(count))
    return table


def _last_runs(repo: Any, n: int) -> list[dict[str, Any]]:
    from storage.mongo.runs import RunRepository

    return list(RunRepository(repo.db).last(n))
