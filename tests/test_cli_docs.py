"""The README's commands table matches the argparse tree, and every option has help text.

The parser is built live from ``crawler.cli.build_parser``: a new option or command that
the README does not list (or a listed one that no longer exists) fails here.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from crawler.cli import build_parser
from tests.helpers import ROOT

#: Options every command takes, documented once above the table.
COMMON = ("--data-dir", "--mongodb-uri")
OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse._SubParsersAction]:
    return [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]


def leaves(parser: argparse.ArgumentParser,
           path: tuple[str, ...] = ("gzarchive",)
           ) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """("gzarchive warc pack", its parser) for every command that takes no sub-command."""
    subs = _subparsers(parser)
    if not subs:
        yield " ".join(path), parser
    for sub in subs:
        for name, child in sub.choices.items():
            yield from leaves(child, (*path, name))


def arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions
            if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]


def commands_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("\n## Commands\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def table_rows() -> dict[str, str]:
    """First cell (the command, without backticks) -> the whole row, for gzarchive rows."""
    rows = {}
    for line in commands_section().splitlines():
        cells = re.split(r"(?<!\\)\|", line)
        if len(cells) >= 3 and cells[1].strip().startswith("`gzarchive "):
            rows[cells[1].strip().strip("`")] = line.replace("\\|", "|")
    return rows


def row_of(command: str, rows: dict[str, str]) -> str:
    found = [row for cell, row in rows.items() if cell == command or cell.startswith(command + " ")]
    assert found, f"the README's commands table has no row for `{command}`"
    assert len(found) == 1, f"`{command}` has {len(found)} rows"
    return found[0]


LEAVES = dict(leaves(build_parser()))


def test_the_tree_has_the_commands_people_use() -> None:
    expected = {"gzarchive crawl", "gzarchive query", "gzarchive show", "gzarchive export",
                "gzarchive stats", "gzarchive warc verify", "gzarchive warc pack",
                "gzarchive warc replay", "gzarchive schedule install"}
    assert expected <= set(LEAVES)


@pytest.mark.parametrize("command", sorted(LEAVES))
def test_table_lists_the_command_with_every_option(command: str) -> None:
    row = row_of(command, table_rows())
    actions = arguments(LEAVES[command])
    known: set[str] = set()
    for action in actions:
        known.update(action.option_strings)
        if action.option_strings and action.option_strings[-1] in COMMON:
            continue
        if not action.option_strings:  # a positional: its metavar as in the usage line
            name = action.metavar or action.dest.upper()
            assert re.search(rf"(?<![\w-]){re.escape(str(name))}(?![\w-])", row), (
                f"`{command}`: positional {name} missing from the README row")
        else:
            for opt in action.option_strings:
                assert re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", row), (
                    f"`{command}`: {opt} missing from the README row")
        for choice in action.choices or ():
            assert re.search(rf"(?<![\w-]){re.escape(str(choice))}(?![\w-])", row), (
                f"`{command}`: choice {choice!r} of {action.dest} missing from the README row")
    stale = set(OPTION.findall(row)) - known
    assert not stale, f"`{command}`: the README lists options it does not have: {sorted(stale)}"


def test_common_options_are_documented_above_the_table() -> None:
    intro = commands_section().split("| command |")[0]
    for opt in COMMON:
        assert f"`{opt} " in intro
    for command, parser in LEAVES.items():
        opts = {o for a in arguments(parser) for o in a.option_strings}
        assert set(COMMON) <= opts, f"{command} lacks {set(COMMON) - opts}"


def test_no_row_for_a_command_that_does_not_exist() -> None:
    for cell in table_rows():
        words = cell.split()[1:]  # after "gzarchive"
        names = []
        for word in words:  # the command words come before any option or metavar
            if not re.fullmatch(r"[a-z][a-z-]*", word):
                break
            names.append(word)
        assert " ".join(["gzarchive", *names]) in LEAVES, (
            f"README row `{cell}` names no gzarchive command")


def _every_parser(parser: argparse.ArgumentParser, path: str = "gzarchive"
                  ) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for sub in _subparsers(parser):
        for name, child in sub.choices.items():
            yield from _every_parser(child, f"{path} {name}")


def test_every_option_and_command_has_help_text() -> None:
    missing = []
    for path, parser in _every_parser(build_parser()):
        for action in arguments(parser):
            if not (action.help and action.help.strip()) or action.help == argparse.SUPPRESS:
                missing.append(f"{path}: {'/'.join(action.option_strings) or action.dest}")
        for sub in _subparsers(parser):
            for choice in sub._choices_actions:
                if not (choice.help and choice.help.strip()):
                    missing.append(f"{path} {choice.dest}: no help line")
    assert not missing, "no help text:\n" + "\n".join(missing)


def test_documented_cron_line_is_what_schedule_install_writes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from crawler.cli import main, schedule

    match = re.search(r"`(0 3 \* \* \* [^`]*# gzarchive:/srv/gzarchive)`",
                      (ROOT / "README.md").read_text(encoding="utf-8"))
    assert match, "README: no example cron line for /srv/gzarchive"
    app = "/srv/gzarchive-app/.venv/bin/gzarchive"
    monkeypatch.setattr(schedule, "crawl_executable", lambda: [app])
    monkeypatch.delenv("MONGODB_URI", raising=False)  # the example has none
    data, tab = tmp_path / "srv", tmp_path / "crontab"
    assert main(["schedule", "install", "--every", "0 3 * * *", "--data-dir", str(data),
                 "--crontab-file", str(tab)]) == 0
    capsys.readouterr()
    lines = [ln for ln in tab.read_text(encoding="utf-8").splitlines() if "gzarchive:" in ln]
    assert [ln.replace(str(data), "/srv/gzarchive") for ln in lines] == [match[1]]
