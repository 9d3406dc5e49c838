"""`gzarchive schedule`: entries written to a crontab file, quoting, validation."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from crawler.cli import schedule
from crawler.cli.common import EXIT_USAGE, CliError

EVIL_SECTIONS = [
    "Hi,貴州!",
    "two words",
    "it's \"quoted\"; rm -rf ~ $(id) `id` & echo",
    "-x",
    "100% sure",
    "back\\slash",
]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Parse and run like ``gzarchive.main`` does, with only the schedule command."""
    parser = argparse.ArgumentParser(prog="gzarchive")
    sub = parser.add_subparsers(dest="command")
    schedule.add_parser(sub)
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args))
    except CliError as exc:
        print(f"gzarchive {args.command}: {exc}", file=sys.stderr)
        code = exc.exit_code
    out, err = capsys.readouterr()
    return code, out, err


def job_lines(tabfile: Path) -> list[str]:
    return [line for line in tabfile.read_text("utf-8").splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def cron_to_shell(line: str) -> tuple[str, str]:
    """What cron hands to /bin/sh for a user-crontab line: (schedule, command).

    Vixie cron: the first five fields are the schedule; in the command ``\\%`` is a
    literal ``%`` and the first unescaped ``%`` ends it (the rest is stdin).
    """
    fields = line.split(None, 5)
    command, out, escaped = fields[5], [], False
    for ch in command:
        if escaped:
            if ch != "%":
                out.append("\\")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "%":
            break
        else:
            out.append(ch)
    if escaped:
        out.append("\\")
    return " ".join(fields[:5]), "".join(out)


def split_command(command: str) -> tuple[dict[str, str], list[str], list[str]]:
    """Split like the shell: leading VAR=value words, the argv, then the redirection."""
    words = shlex.split(command, comments=True)
    env: dict[str, str] = {}
    while words and "=" in words[0] and words[0].split("=", 1)[0].isidentifier():
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    assert words[-3] == ">>" and words[-1] == "2>&1", words
    return env, words[:-3], words[-3:]


@pytest.fixture
def tabfile(tmp_path: Path) -> Path:
    return tmp_path / "crontab"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "my data"


def test_install_writes_one_tagged_line(tabfile: Path, data_dir: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["schedule", "install", "--every", "0 3 * * *", "老外在貴州",
                          "--data-dir", str(data_dir), "--crontab-file", str(tabfile),
                          "--mongodb-uri", "mongodb://u:p%40ss@db:27017/gz"], capsys)
    assert code == 0, err
    assert "installed schedule" in out and "next runs:" in out
    [line] = job_lines(tabfile)
    when, command = cron_to_shell(line)
    assert when == "0 3 * * *"
    assert line.endswith(f"# gzarchive:{data_dir}")
    assert "p\\%40ss" in line  # cron would cut the line at a bare %
    env, argv, redirect = split_command(command)
    assert env["MONGODB_URI"] == "mongodb://u:p%40ss@db:27017/gz"
    assert Path(argv[0]).is_absolute() and os.path.exists(argv[0])
    assert argv[0] == os.path.abspath(sys.executable) or argv[0].endswith("/gzarchive")
    assert argv[argv.index("crawl"):] == ["crawl", "--quiet", "--data-dir", str(data_dir),
                                          "--", "老外在貴州"]
    assert redirect == [">>", str(data_dir / "logs" / "cron.log"), "2>&1"]
    assert (data_dir / "logs").is_dir()
    assert tabfile.stat().st_mode & 0o077 == 0  # may hold a password


def test_second_install_replaces_only_its_own_entry(tabfile: Path, data_dir: Path,
                                                    tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    tabfile.write_text("MAILTO=ops@example.org\n# keep me\n15 1 * * * /usr/bin/backup\n")
    other = tmp_path / "other"
    base = ["--crontab-file", str(tabfile)]
    assert run(["schedule", "install", "--every", "0 3 * * *", "--data-dir", str(data_dir),
                *base], capsys)[0] == 0
    assert run(["schedule", "install", "--every", "0 4 * * 1", "--data-dir", str(other),
                *base], capsys)[0] == 0
    code, out, _ = run(["schedule", "install", "--every", "30 5 * * *", "--all",
                        "--data-dir", str(data_dir), "--portal-url", "http://x.test", *base],
                       capsys)
    assert code == 0 and "replaced schedule" in out
    lines = job_lines(tabfile)
    assert "15 1 * * * /usr/bin/backup" in lines
    assert "MAILTO=ops@example.org" in tabfile.read_text()
    ours = [line for line in lines if f"# gzarchive:{data_dir}" in line]
    assert len(ours) == 1
    when, command = cron_to_shell(ours[0])
    assert when == "30 5 * * *"
    argv = split_command(command)[1]
    assert argv[argv.index("crawl"):] == ["crawl", "--quiet", "--data-dir", str(data_dir),
                                          "--portal-url", "http://x.test", "--all"]
    assert sum(f"# gzarchive:{other}" in line for line in lines) == 1


def test_show_lists_entries_with_next_runs(tabfile: Path, data_dir: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["schedule", "show", "--crontab-file", str(tabfile)], capsys)
    assert code == 0 and "no gzarchive schedule" in out
    run(["schedule", "install", "--every", "*/20 * * * *", "--data-dir", str(data_dir),
         "--crontab-file", str(tabfile)], capsys)
    code, out, _ = run(["schedule", "show", "--crontab-file", str(tabfile)], capsys)
    assert code == 0
    assert f"data dir : {data_dir}" in out and "*/20 * * * *" in out
    [runs] = [line for line in out.splitlines() if line.startswith("next runs:")]
    times = runs.split(":", 1)[1].split(",")
    assert len(times) == 3
    minutes = [int(t.strip()[14:16]) for t in times]
    assert all(m in (0, 20, 40) for m in minutes)


def test_remove_empties_the_crontab(tabfile: Path, data_dir: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--data-dir", str(data_dir), "--crontab-file", str(tabfile)]
    run(["schedule", "install", "--every", "0 3 * * *", *args], capsys)
    code, out, _ = run(["schedule", "remove", *args], capsys)
    assert code == 0 and f"removed schedule for {data_dir}" in out
    assert job_lines(tabfile) == []
    code, out, _ = run(["schedule", "remove", *args], capsys)
    assert code == 0 and "no gzarchive schedule" in out


def test_remove_everything(tabfile: Path, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("a", "b"):
        run(["schedule", "install", "--every", "@daily", "--data-dir", str(tmp_path / name),
             "--crontab-file", str(tabfile)], capsys)
    assert len(job_lines(tabfile)) == 2
    assert run(["schedule", "remove", "--everything", "--crontab-file", str(tabfile)],
               capsys)[0] == 0
    assert job_lines(tabfile) == []


def test_crontab_file_from_environment(tabfile: Path, data_dir: Path,
                                       monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GZARCHIVE_CRONTAB_FILE", str(tabfile))
    code, _, err = run(["schedule", "install", "--every", "0 3 * * *",
                        "--data-dir", str(data_dir)], capsys)
    assert code == 0, err
    assert len(job_lines(tabfile)) == 1


@pytest.mark.parametrize("expr", ["0 3 * *", "0 3 * * * *", "61 3 * * *", "H 3 * * *",
                                  "0 0 L * *", "@reboot", "every day", ""])
def test_bad_expression_is_a_usage_error(expr: str, tabfile: Path, data_dir: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["schedule", "install", "--every", expr, "--data-dir", str(data_dir),
                          "--crontab-file", str(tabfile)], capsys)
    assert code == EXIT_USAGE == 2
    assert err.startswith("gzarchive schedule: invalid cron expression")
    assert len(err.strip().splitlines()) == 1
    assert not tabfile.exists()


@pytest.mark.parametrize("bad", ["two\nlines", "carriage\rreturn", "hash #tag"])
def test_unsafe_section_names_are_refused(bad: str, tabfile: Path, data_dir: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["schedule", "install", "--every", "0 3 * * *", bad,
                        "--data-dir", str(data_dir), "--crontab-file", str(tabfile)], capsys)
    assert code == EXIT_USAGE
    assert err.startswith("gzarchive schedule: refusing")
    assert not tabfile.exists()


def test_data_dir_with_newline_is_refused(tabfile: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["schedule", "install", "--every", "0 3 * * *",
                        "--data-dir", str(tmp_path / "a\nb"), "--crontab-file", str(tabfile)],
                       capsys)
    assert code == EXIT_USAGE and "refusing" in err


def test_line_round_trips_through_shlex(tabfile: Path, data_dir: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["schedule", "install", "--every", "0 3 * * *", "--data-dir",
                        str(data_dir), "--crontab-file", str(tabfile), "--", *EVIL_SECTIONS],
                       capsys)
    assert code == 0, err
    [line] = job_lines(tabfile)
    _, command = cron_to_shell(line)
    env, argv, _ = split_command(command)
    expected = schedule.crawl_argv(data_dir, EVIL_SECTIONS)
    assert argv == expected
    assert argv[-len(EVIL_SECTIONS) - 1:] == ["--", *EVIL_SECTIONS]
    assert "MONGODB_URI" not in env


def test_line_runs_under_sh_with_the_intended_argv(tabfile: Path, data_dir: Path,
                                                   tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Execute the crontab line the way cron would, with a stub in place of gzarchive."""
    stub = tmp_path / "stub.py"
    stub.write_text("import json, os, sys\n"
                    "print(json.dumps({'argv': sys.argv[1:],"
                    " 'uri': os.environ.get('MONGODB_URI')}))\n")
    monkeypatch.setattr(schedule, "crawl_executable", lambda: [sys.executable, str(stub)])
    uri = "mongodb://user:p%25w'd@host/db?x=1&y=2"
    code, _, err = run(["schedule", "install", "--every", "0 3 * * *", "--mongodb-uri", uri,
                        "--data-dir", str(data_dir), "--crontab-file", str(tabfile),
                        "--", *EVIL_SECTIONS], capsys)
    assert code == 0, err
    [line] = job_lines(tabfile)
    _, command = cron_to_shell(line)
    subprocess.run(["/bin/sh", "-c", command], check=True, timeout=60, cwd=tmp_path,
                   env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    result = json.loads((data_dir / "logs" / "cron.log").read_text("utf-8"))
    assert result["argv"] == ["crawl", "--quiet", "--data-dir", str(data_dir),
                              "--", *EVIL_SECTIONS]
    assert result["uri"] == uri
    assert not (tmp_path / "id").exists()


def test_validate_expression_normalises_spacing() -> None:
    assert schedule.validate_expression("  0   3 * *  * ") == "0 3 * * *"
    assert schedule.validate_expression("@daily") == "@daily"


def test_executable_is_absolute() -> None:
    prefix = schedule.crawl_executable()
    assert os.path.isabs(prefix[0])
    assert prefix[1:] in ([], ["-m", "crawler"])


def test_no_crontab_program_is_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    # A PATH without crontab, as on a machine without the Debian package `cron`.
    monkeypatch.setenv("PATH", str(tmp_path))
    code, out, err = run(["schedule", "install", "--every", "0 3 * * *",
                          "--data-dir", str(tmp_path / "data")], capsys)
    assert code == EXIT_USAGE
    assert err.strip().count("\n") == 0 and "no crontab program" in err and "cron" in err
    assert not (tmp_path / "data").exists()


def test_no_crontab_program_through_the_cli(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "crawler", "schedule", "show", "--data-dir",
                           str(tmp_path / "data")], capture_output=True, text=True, env=env,
                          timeout=60)
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "Traceback" not in proc.stderr
