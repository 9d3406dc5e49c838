"""The README's demo figures, measured by running what the demo runs.

``scripts/demo.sh`` starts the offline replica with ``--profile js`` on 127.0.0.1, runs
``gzarchive crawl 老外在貴州 Hi,貴州!`` into a fresh data directory, and a second demo run
recrawls the unchanged replica into the same directory. This script does the same
(the replica in this process, so that its request log can be read; both crawls through
the CLI in a subprocess at the settings users get, no ``--set``), then reads the
figures back from what the runs printed and wrote: the crawl summary (pages fetched,
articles, WARC records), the replica's request log (requests served, conditional,
answered 304), the WARC files each run added (read back with warcio: records by type,
bytes), ``gzarchive export`` (articles stored) and the wall time of each subprocess.

It prints a Markdown table whose caption states the machine, the date and the commit;
``--update-readme`` writes it into README.md between ``<!-- figures:begin -->`` and
``<!-- figures:end -->``, and the demo sentence of the README's first paragraph between
``<!-- figures:recrawl:begin -->`` and ``<!-- figures:recrawl:end -->``.

    .venv/bin/python benchmarks/readme_figures.py [--update-readme] [--readme PATH]
        [--data-dir EMPTY_DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.recrawl import CONDITIONAL, wait_for_embedded_server  # noqa: E402
from tests.helpers import ROOT, crawl, run_cli  # noqa: E402
from tests.replica.config import PROFILES, ReplicaConfig  # noqa: E402
from tests.replica.replica import Replica  # noqa: E402

SECTIONS = ("老外在貴州", "Hi,貴州!")  # as scripts/demo.sh passes them
COMMAND = ".venv/bin/python benchmarks/readme_figures.py --update-readme"
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"
SENTENCE_BEGIN, SENTENCE_END = "<!-- figures:recrawl:begin -->", "<!-- figures:recrawl:end -->"
#: The table's columns whose cells are counts: the same on every run of one commit
#: (times, bytes and dates are not).
COUNT_COLUMNS = ("exit", "pages fetched", "requests served (conditional, 304)",
                 "articles (this run)", "in the archive", "WARC records")
# Record types in the order the table lists them.
RECORD_TYPES = ("warcinfo", "request", "response", "revisit", "metadata", "conversion",
                "resource")


class FiguresError(RuntimeError):
    """A run did not give what the figures are read from (one line, shown as is)."""


@dataclass
class RunFigures:
    """One crawl, as it printed, served and wrote."""

    name: str
    exit_code: int
    seconds: float
    pages_fetched: int
    articles: dict[str, int]       # the summary's article counts: label -> count
    summary_records: int           # "WARC: N records" of the summary
    requests: int                  # requests the replica served during the run
    conditional: int
    not_modified: int
    warc_files: list[str]
    warc_bytes: int
    record_types: Counter[str] = field(default_factory=Counter)
    stored: int = 0                # articles in the archive after the run (export)

    @property
    def warc_records(self) -> int:
        return sum(self.record_types.values())


@dataclass
class Machine:
    cores: int
    cpu: str
    ram_gib: float
    date: str
    commit: str
    load: float


@dataclass
class Figures:
    machine: Machine
    first: RunFigures
    recrawl: RunFigures


def machine() -> Machine:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = " ".join(line.split(":", 1)[1].split())
                break
    except OSError:
        pass  # not Linux: the caption says "unknown CPU"
    ram_kib = 0
    try:
        meminfo = Path("/proc/meminfo").read_text(encoding="utf-8")
        match = re.search(r"^MemTotal:\s+(\d+) kB", meminfo, re.M)
        ram_kib = int(match.group(1)) if match else 0
    except OSError:
        pass  # shown as 0 GiB
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                          capture_output=True, text=True)
    commit = head.stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "crawler", "pipelines",
                            "storage", "tests/replica"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    if dirty:
        commit += " + uncommitted changes"
    return Machine(cores=os.cpu_count() or 0, cpu=cpu, ram_gib=ram_kib / 1024 ** 2,
                   date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), commit=commit,
                   load=os.getloadavg()[0])


def parse_summary(stdout: str) -> tuple[int, dict[str, int], int]:
    """(pages fetched, article counts, WARC records) from a crawl summary."""
    pages = re.search(r"^pages fetched\s*: (\d+)", stdout, re.M)
    articles = re.search(r"^articles\s*: (\d+) extracted = (.*)$", stdout, re.M)
    records = re.search(r"^WARC\s*: (\d+) records", stdout, re.M)
    if not (pages and articles and records):
        tail = " | ".join(stdout.strip().splitlines()[-3:])
        raise FiguresError(f"no crawl summary in the output (last lines: {tail!r})")
    counts = {"extracted": int(articles.group(1))}
    for part in articles.group(2).split("(")[0].split(" + "):
        number, _, label = part.strip().partition(" ")
        counts[label] = int(number)
    return int(pages.group(1)), counts, int(records.group(1))


def read_warc(path: Path) -> Counter[str]:
    types: Counter[str] = Counter()
    with path.open("rb") as fh:
        for record in ArchiveIterator(fh):
            types[record.rec_type] += 1
    return types


def run(name: str, replica: Replica, data: Path) -> RunFigures:
    before = {p.name for p in (data / "warc").glob("*.warc.gz")}
    first_entry = len(replica.log)
    start = time.perf_counter()
    proc = crawl(replica.url, data, *SECTIONS)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        print(f"warning: {name} exited {proc.returncode}: {last}", file=sys.stderr)
    pages, articles, summary_records = parse_summary(proc.stdout)
    entries = replica.log[first_entry:]
    new = sorted(p for p in (data / "warc").glob("*.warc.gz") if p.name not in before)
    types: Counter[str] = Counter()
    for path in new:
        types += read_warc(path)
    exported = run_cli("export", "--data-dir", str(data))
    if exported.returncode != 0:
        raise FiguresError(f"gzarchive export after the {name} exited "
                           f"{exported.returncode}: {exported.stderr.strip()[-300:]}")
    return RunFigures(
        name=name, exit_code=proc.returncode, seconds=seconds, pages_fetched=pages,
        articles=articles, summary_records=summary_records, requests=len(entries),
        conditional=sum(1 for e in entries if any(h in e.headers for h in CONDITIONAL)),
        not_modified=sum(1 for e in entries if e.status == 304),
        warc_files=[p.name for p in new], warc_bytes=sum(p.stat().st_size for p in new),
        record_types=types,
        stored=sum(1 for line in exported.stdout.splitlines() if line.strip()))


def collect(data_dir: Path | None = None) -> Figures:
    """Run the demo's first crawl and recrawl on a fresh replica and data directory."""
    if data_dir is not None and data_dir.exists() and any(data_dir.iterdir()):
        raise FiguresError(f"{data_dir} is not empty: the first crawl needs a fresh one")
    tmp = None
    if data_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="readme-figures-")
        data_dir = Path(tmp.name)
    data_dir.mkdir(parents=True, exist_ok=True)
    host = machine()
    replica = Replica(ReplicaConfig(**PROFILES["js"])).start()  # type: ignore[arg-type]
    try:
        first = run("first crawl", replica, data_dir)
        recrawl = run("recrawl", replica, data_dir)
    finally:
        replica.stop()
        wait_for_embedded_server(data_dir)
        if tmp is not None:
            tmp.cleanup()
    return Figures(machine=host, first=first, recrawl=recrawl)


def share(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f} %" if whole else "n/a"


def articles_cell(r: RunFigures) -> str:
    parts = [f"{n} {label}" for label, n in r.articles.items()
             if label != "extracted" and (n or label == "new")]
    return f"{' + '.join(parts)} ({r.articles['extracted']} extracted)"


def records_cell(r: RunFigures) -> str:
    known = [t for t in RECORD_TYPES if r.record_types[t]]
    other = sorted(t for t in r.record_types if t not in RECORD_TYPES)
    detail = ", ".join(f"{r.record_types[t]} {t}" for t in known + other)
    cell = f"{r.warc_records} ({detail})"
    if r.summary_records != r.warc_records:
        cell += f"; the summary says {r.summary_records}"
    return cell


def render_table(fig: Figures) -> str:
    m, first, again = fig.machine, fig.first, fig.recrawl
    sections = " ".join(f"'{s}'" if "," in s else s for s in SECTIONS)
    lines = [
        f"Measured {m.date} at commit {m.commit}, on {m.cores} cores ({m.cpu}), "
        f"{m.ram_gib:.1f} GiB RAM, load average {m.load:.1f} at the start (the machine is "
        "shared: times are orders of magnitude). The runs of `scripts/demo.sh`: the replica "
        "`--profile js` (Hi,貴州! filled by JavaScript, rendered in Chromium) on 127.0.0.1, "
        f"`gzarchive crawl {sections}` into a fresh data directory, then the same crawl of the "
        "unchanged replica into the same directory (the demo run again), at the settings "
        f"users get. Counts are read from the summary, the replica's request log, the WARC "
        f"files (warcio) and `gzarchive export`. Regenerate with `{COMMAND}`.",
        "",
        "| run | exit | pages fetched | requests served (conditional, 304) "
        "| articles (this run) | in the archive | WARC records | WARC bytes | wall s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in (first, again):
        lines.append(
            f"| {r.name} | {r.exit_code} | {r.pages_fetched} "
            f"| {r.requests} ({r.conditional}, {r.not_modified}) | {articles_cell(r)} "
            f"| {r.stored} | {records_cell(r)} | {r.warc_bytes:,} | {r.seconds:.1f} |")
    lines.append(
        f"| recrawl / first | | {share(again.pages_fetched, first.pages_fetched)} "
        f"| {share(again.requests, first.requests)} | | "
        f"| {share(again.warc_records, first.warc_records)} "
        f"| {share(again.warc_bytes, first.warc_bytes)} "
        f"| {share(again.seconds, first.seconds)} |")
    return "\n".join(lines)


def render_sentence(fig: Figures) -> str:
    r = fig.recrawl
    answered = (f"{r.conditional} conditional requests, all answered 304"
                if r.conditional == r.not_modified
                else f"{r.conditional} conditional requests, {r.not_modified} answered 304")
    return (f"{r.articles.get('new', 0)} new articles, {answered}, "
            f"{r.record_types['revisit']} revisit records; the crawl takes "
            f"~{r.seconds:.0f} s here")


def replace_between(text: str, begin: str, end: str, body: str, *, block: bool) -> str:
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise FiguresError(f"README has no {begin} … {end} markers")
    inner = f"\n{body}\n" if block else body
    return text[:start + len(begin)] + inner + text[stop:]


def between(text: str, begin: str, end: str) -> str:
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise FiguresError(f"README has no {begin} … {end} markers")
    return text[start + len(begin):stop].strip()


def update_readme(path: Path, fig: Figures) -> None:
    text = path.read_text(encoding="utf-8")
    text = replace_between(text, BEGIN, END, render_table(fig), block=True)
    text = replace_between(text, SENTENCE_BEGIN, SENTENCE_END, render_sentence(fig),
                           block=False)
    tmp = path.with_name(path.name + ".figures-tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def parse_table(block: str) -> dict[str, dict[str, str]]:
    """The rows of a rendered table: run name -> column -> cell text."""
    rows = [line.strip().strip("|").split(" | ") for line in block.splitlines()
            if line.startswith("|") and not line.startswith("|---")]
    if not rows:
        raise FiguresError("no table in the figures block")
    header = [cell.strip() for cell in rows[0]]
    return {cells[0].strip(): dict(zip(header, (c.strip() for c in cells), strict=False))
            for cells in rows[1:]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update-readme", action="store_true",
                        help="write the table and the demo sentence into the README")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md",
                        help="the README to update (default: the project's)")
    parser.add_argument("--data-dir", type=Path,
                        help="an empty directory to crawl into, kept (default: a temporary one)")
    args = parser.parse_args()
    try:
        fig = collect(args.data_dir)
        print(render_table(fig))
        print()
        print(f"demo sentence: {render_sentence(fig)}")
        if args.update_readme:
            update_readme(args.readme, fig)
            print(f"updated {args.readme}")
    except FiguresError as exc:
        print(f"readme_figures: {exc}", file=sys.stderr)
        return 1
    return 0 if fig.first.exit_code == 0 and fig.recrawl.exit_code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
