"""`gzarchive serve` options, and the reading room's text helpers (no crawl needed)."""

from __future__ import annotations

import pytest

from crawler.cli.common import EXIT_USAGE, CliError
from crawler.cli.serve import is_loopback, parse_bind
from crawler.web.archive import safe_name
from crawler.web.charts import grouped, stacked
from crawler.web.text import highlight, side_by_side, snippet
from tests.helpers import run_cli


@pytest.mark.parametrize("bind", ["0.0.0.0:8080", "192.168.1.5:80", "[::]:8080",
                                  "example.org:8080"])
def test_a_non_loopback_bind_without_a_token_is_refused(tmp_path, bind: str) -> None:
    proc = run_cli("serve", "--bind", bind, "--data-dir", str(tmp_path), timeout=60)
    assert proc.returncode == EXIT_USAGE
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "without --token" in lines[0], proc.stderr
    assert not any(tmp_path.iterdir()), "nothing opened or created"


def test_serve_on_a_missing_archive_is_a_usage_error(tmp_path) -> None:
    proc = run_cli("serve", "--bind", "127.0.0.1:0", "--data-dir", str(tmp_path / "none"),
                   timeout=60)
    assert proc.returncode == EXIT_USAGE and "no archive at" in proc.stderr


def test_bind_parsing() -> None:
    assert parse_bind("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_bind("[::1]:9") == ("::1", 9)
    for bad in ("8080", "host:", "host:x", "h:70000"):
        with pytest.raises(CliError):
            parse_bind(bad)
    assert is_loopback("127.0.0.2") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("gz.example")


def test_warc_names_with_a_path_are_not_names() -> None:
    assert safe_name("gzarchive-1.warc.gz")
    for bad in ("../x.warc.gz", "a/b.warc.gz", "..", "", "x\x00y", "..\\x"):
        assert not safe_name(bad)


def test_highlight_in_either_script() -> None:
    parts = highlight("走进貴州的苗寨，贵州人好客", "贵州")
    assert [t for t, marked in parts if marked] == ["貴州", "贵州"]
    assert "".join(t for t, _ in parts) == "走进貴州的苗寨，贵州人好客"
    cut = snippet("甲" * 300 + "苗族" + "乙" * 300, "苗族", width=60)
    assert cut[0] == ("…", False) and ("苗族", True) in cut and cut[-1] == ("…", False)


def test_side_by_side_marks_the_changed_characters() -> None:
    rows = side_by_side("第一段\n第二段旧的\n第三段", "第一段\n第二段新的\n第三段\n第四段")
    assert [r.kind for r in rows] == ["equal", "replace", "equal", "insert"]
    assert ("旧", True) in rows[1].old and ("新", True) in rows[1].new
    assert rows[3].new == [("第四段", True)]


def test_charts_scale_to_the_data() -> None:
    chart = stacked("t", ["2025-01", "2025-02"], {"a": [3, 0], "b": [1, 4]})
    assert len(chart.bars) == 3 and all(b.h > 0 for b in chart.bars)
    assert max(b.y + b.h for b in chart.bars) <= chart.height
    assert grouped("t", [], {"x": []}).empty
