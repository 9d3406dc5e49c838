"""Runs page: articles per month and section, run durations, pages and failures per run
(server-rendered SVG), and each run's failures with their URLs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from crawler.web.charts import grouped, stacked

if TYPE_CHECKING:
    from crawler.web.app import Room

RUNS = 50
#: Keys of a run's ``errors`` that are not failure kinds (crawler/run/record.py).
NOT_FAILURES = ("fatal", "needs_rendering", "exit_reason")


def failures_of(run: dict[str, Any]) -> list[dict[str, Any]]:
    """[{kind, count, examples}] of a run document's ``errors``."""
    out = []
    for kind, value in (run.get("errors") or {}).items():
        if kind in NOT_FAILURES or not isinstance(value, dict):
            continue
        out.append({"kind": kind, "count": int(value.get("count") or 0),
                    "examples": [str(u) for u in value.get("examples") or []]})
    return sorted(out, key=lambda f: (-f["count"], f["kind"]))


def _duration(run: dict[str, Any]) -> float | None:
    start, end = run.get("started_at"), run.get("finished_at")
    if start is None or end is None:
        return None
    return max(0.0, float((end - start).total_seconds()))


def runs(room: Room, request: Request) -> Response:
    reader = room.reader
    months = reader.per_month_section()
    month_keys = sorted({m for m, _ in months})
    section_keys = sorted({s for _, s in months})
    per_month = stacked("Articles per month (published, Beijing time) by section", month_keys,
                        {s: [months.get((m, s), 0) for m in month_keys] for s in section_keys})
    docs = list(reversed(reader.last_runs(RUNS)))  # oldest first, left to right
    rows = []
    for run in docs:
        counts = run.get("counts") or {}
        fails = failures_of(run)
        rows.append({"run": run, "duration": _duration(run), "pages": int(counts.get("pages") or 0),
                     "articles": int(counts.get("articles") or 0),
                     "failed": sum(f["count"] for f in fails), "failures": fails,
                     "label": str(run.get("started_at") or "")[5:19]})
    labels = [r["label"] for r in rows]
    durations = grouped("Run duration (seconds)", labels,
                        {"duration": [r["duration"] or 0 for r in rows]}, " s")
    pages = grouped("Pages and failures per run", labels,
                    {"pages": [r["pages"] for r in rows], "failures": [r["failed"] for r in rows]})
    return room.render(request, "runs.html", charts=[per_month, durations, pages],
                       rows=list(reversed(rows)))
