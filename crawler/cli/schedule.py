"""`gzarchive schedule install|show|remove`: a cron entry that runs the crawl unattended.

One entry per data directory, found again by its tag comment ``gzarchive:<abs data dir>``.
The entry runs ``gzarchive crawl --quiet`` by absolute paths (the executable, the data
directory) and appends its output to ``DATA/logs/cron.log``. Every argument is passed
through ``shlex.quote``; python-crontab escapes ``%`` (cron's stdin marker) on writing.
``--crontab-file`` (env GZARCHIVE_CRONTAB_FILE) edits a file instead of the user's crontab.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from crawler.cli.common import EXIT_ERROR, EXIT_OK, EXIT_USAGE, CliError, add_common

TAG_PREFIX = "gzarchive:"
CRON_LOG = Path("logs") / "cron.log"
SPECIALS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
# Vixie cron truncates longer command lines (MAX_COMMAND 1000).
MAX_LINE = 990
NEXT_RUNS = 3


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("schedule", help="install, show or remove the cron entry")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    install = actions.add_parser("install", help="add or replace the entry for a data directory")
    install.add_argument("--every", required=True, metavar="CRON",
                         help='cron expression, e.g. "0 3 * * *" (daily at 03:00)')
    install.add_argument("sections", nargs="*", metavar="SECTION",
                         help="sections to crawl (default: the crawl's default sections)")
    install.add_argument("--all", action="store_true", help="crawl every section")
    install.add_argument("--portal-url", default=None, metavar="URL",
                         help="the portal's home page the crawl starts from (default: the "
                              "crawl's, https://gz.cri.cn)")
    _add_shared(install)
    install.set_defaults(func=run_install)

    show = actions.add_parser("show", help="list gzarchive entries and their next runs")
    _add_shared(show)
    show.set_defaults(func=run_show)

    remove = actions.add_parser("remove", help="delete the entry for a data directory")
    remove.add_argument("--everything", action="store_true",
                        help="delete every gzarchive entry, whatever its data directory")
    _add_shared(remove)
    remove.set_defaults(func=run_remove)


def _add_shared(parser: argparse.ArgumentParser) -> None:
    add_common(parser)
    parser.add_argument("--crontab-file", type=Path,
                        default=os.environ.get("GZARCHIVE_CRONTAB_FILE") or None,
                        help="edit this file instead of the user's crontab "
                             "(default: env GZARCHIVE_CRONTAB_FILE)")


# -- building the entry ------------------------------------------------------------------

def validate_expression(expr: str) -> str:
    """Return the normalised expression or raise ``CliError`` (usage) saying what is wrong."""
    from croniter import croniter
    from crontab import CronSlices

    text = " ".join(expr.split())
    if text.startswith("@"):
        ok = text in SPECIALS
    else:
        fields = text.split(" ") if text else []
        if len(fields) != 5:
            raise CliError(f"invalid cron expression {expr!r}: expected 5 fields "
                           f"(minute hour day-of-month month day-of-week), got {len(fields)}",
                           EXIT_USAGE)
        ok = True
    # Both must accept it: croniter computes the next runs, python-crontab (like cron)
    # rejects extensions croniter allows (L, #, seconds).
    if not (ok and croniter.is_valid(text) and CronSlices.is_valid(text)):
        raise CliError(f"invalid cron expression {expr!r}", EXIT_USAGE)
    return text


def entry_tag(data_dir: Path) -> str:
    return f"{TAG_PREFIX}{data_dir}"


def crawl_executable() -> list[str]:
    """Absolute argv prefix running gzarchive with this interpreter (no symlink resolving:
    a venv's python is a symlink and must stay one)."""
    python = Path(os.path.abspath(sys.executable))
    script = python.parent / "gzarchive"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [str(python), "-m", "crawler"]


def crawl_environment(mongodb_uri: str | None, executable: Sequence[str]) -> dict[str, str]:
    """Variables the cron job sets: the store, and an import path when run as ``-m``."""
    env: dict[str, str] = {}
    if len(executable) > 1:  # "python -m crawler": make the package importable from $HOME
        import crawler

        env["PYTHONPATH"] = str(Path(crawler.__file__).resolve().parent.parent)
    env["PYTHONUTF8"] = "1"  # cron's locale is often POSIX; section names are Chinese
    if mongodb_uri:
        env["MONGODB_URI"] = mongodb_uri
    return env


def crawl_argv(data_dir: Path, sections: Sequence[str], *, all_sections: bool = False,
               portal_url: str | None = None,
               executable: Sequence[str] | None = None) -> list[str]:
    """The argv the cron job runs (without environment and redirection)."""
    argv = [*(executable or crawl_executable()), "crawl", "--quiet", "--data-dir", str(data_dir)]
    if portal_url:
        argv += ["--portal-url", portal_url]
    if all_sections:
        argv.append("--all")
    if sections:
        argv += ["--", *sections]  # a section named "-x" must not read as an option
    return argv


def shell_line(argv: Sequence[str], env: dict[str, str], log_path: Path) -> str:
    """Quote everything into one /bin/sh command line appending its output to log_path."""
    for value in [*argv, *env.values(), str(log_path)]:
        check_argument(value)
    assignments = [f"{name}={shlex.quote(value)}" for name, value in env.items()]
    command = " ".join([*assignments, *(shlex.quote(a) for a in argv),
                        ">>", shlex.quote(str(log_path)), "2>&1"])
    if len(command) > MAX_LINE:
        raise CliError(f"the cron command would be {len(command)} characters; cron "
                       f"truncates after {MAX_LINE}: schedule fewer sections", EXIT_USAGE)
    return command


def check_argument(value: str) -> None:
    """Refuse what no quoting can carry through a crontab line."""
    if any(c in value for c in "\n\r\0"):
        raise CliError(f"refusing {value!r}: a line break or NUL cannot go in a crontab line",
                       EXIT_USAGE)
    # python-crontab (and the shell, for @specials) reads " #" onwards as a comment.
    if "#" in value:
        raise CliError(f"refusing {value!r}: '#' would start a comment in the crontab line",
                       EXIT_USAGE)


def next_runs(expr: str, count: int = NEXT_RUNS,
              now: dt.datetime | None = None) -> list[dt.datetime]:
    from croniter import croniter

    base = now or dt.datetime.now().astimezone()
    it = croniter(expr, base)
    return [it.get_next(dt.datetime) for _ in range(count)]


# -- the crontab -------------------------------------------------------------------------

def open_crontab(path: Path | None) -> Any:
    import shutil

    from crontab import CronTab

    if path is None and shutil.which("crontab") is None:
        # Not an internal error: the machine lacks cron (Debian package `cron`).
        raise CliError("no crontab program: install cron (`apt-get install -y cron`) or "
                       "write to a file with --crontab-file FILE", EXIT_USAGE)
    try:
        if path is None:
            return CronTab(user=True)
        path = path.expanduser()
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # The line may carry a MongoDB password: keep the file private.
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return CronTab(tabfile=str(path))
    except OSError as exc:
        raise CliError(f"cannot read the crontab: {exc}", EXIT_ERROR) from exc


def write_crontab(tab: Any) -> None:
    try:
        tab.write()
    except OSError as exc:
        raise CliError(f"cannot write the crontab: {exc}", EXIT_ERROR) from exc


def gzarchive_jobs(tab: Any, data_dir: Path | None = None) -> Iterator[Any]:
    for job in list(tab):
        comment = job.comment or ""
        if not comment.startswith(TAG_PREFIX):
            continue
        if data_dir is None or comment == entry_tag(data_dir):
            yield job


def _where(path: Path | None) -> str:
    return str(path) if path is not None else "the user's crontab"


# -- actions -----------------------------------------------------------------------------

def _data_dir(args: argparse.Namespace) -> Path:
    data_dir = Path(os.path.abspath(Path(args.data_dir).expanduser()))
    check_argument(str(data_dir))
    return data_dir


def run_install(args: argparse.Namespace) -> int:
    expr = validate_expression(args.every)
    if args.all and args.sections:
        raise CliError("give SECTION names or --all, not both", EXIT_USAGE)
    data_dir = _data_dir(args)
    executable = crawl_executable()
    argv = crawl_argv(data_dir, args.sections, all_sections=args.all,
                      portal_url=args.portal_url, executable=executable)
    log_path = data_dir / CRON_LOG
    command = shell_line(argv, crawl_environment(args.mongodb_uri, executable), log_path)

    tab = open_crontab(args.crontab_file)
    replaced = len(list(gzarchive_jobs(tab, data_dir)))
    tab.remove_all(comment=entry_tag(data_dir))
    job = tab.new(command=command, comment=entry_tag(data_dir))
    job.setall(expr)
    # The shell opens the log before the crawl creates any directory.
    log_path.parent.mkdir(parents=True, exist_ok=True)
    write_crontab(tab)
    verb = "replaced" if replaced else "installed"
    print(f"{verb} schedule for {data_dir} in {_where(args.crontab_file)}:")
    print(f"  {expr} {command}")
    print("next runs: " + ", ".join(t.isoformat(" ", "minutes") for t in next_runs(expr)))
    return EXIT_OK


def run_show(args: argparse.Namespace) -> int:
    tab = open_crontab(args.crontab_file)
    jobs = list(gzarchive_jobs(tab))
    if not jobs:
        print(f"no gzarchive schedule in {_where(args.crontab_file)}")
        return EXIT_OK
    for job in jobs:
        expr = job.slices.render()
        state = "enabled" if job.is_enabled() else "DISABLED (commented out)"
        print(f"data dir : {job.comment[len(TAG_PREFIX):]}")
        print(f"schedule : {expr}  [{state}]")
        print(f"command  : {job.command}")
        try:
            runs = ", ".join(t.isoformat(" ", "minutes") for t in next_runs(expr))
        except (ValueError, KeyError) as exc:
            runs = f"unknown ({exc})"
        print(f"next runs: {runs}")
        print()
    return EXIT_OK


def run_remove(args: argparse.Namespace) -> int:
    tab = open_crontab(args.crontab_file)
    if args.everything:
        jobs = list(gzarchive_jobs(tab))
    else:
        jobs = list(gzarchive_jobs(tab, _data_dir(args)))
    if not jobs:
        target = "any data directory" if args.everything else str(_data_dir(args))
        print(f"no gzarchive schedule for {target} in {_where(args.crontab_file)}")
        return EXIT_OK
    tab.remove(*jobs)
    write_crontab(tab)
    for job in jobs:
        print(f"removed schedule for {job.comment[len(TAG_PREFIX):]}")
    return EXIT_OK


__all__ = ["add_parser", "crawl_argv", "shell_line", "validate_expression", "entry_tag",
           "next_runs", "TAG_PREFIX"]

