"""The README's demo figures are what the demo gives: the block that
``benchmarks/readme_figures.py --update-readme`` wrote is compared, count by count,
with a fresh run of the same command's collection (the replica ``--profile js``, a
first crawl and a recrawl through the CLI). Times, bytes and dates differ from run to
run and are not compared."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from benchmarks.readme_figures import (
    BEGIN,
    COUNT_COLUMNS,
    END,
    SENTENCE_BEGIN,
    SENTENCE_END,
    Figures,
    FiguresError,
    Machine,
    RunFigures,
    between,
    collect,
    parse_table,
    render_sentence,
    render_table,
    update_readme,
)
from crawler import rendering
from tests.helpers import ROOT

README = ROOT / "README.md"
RUNS = ("first crawl", "recrawl")


def _counts_of(sentence: str) -> str:
    """The demo sentence without its time (``; the crawl takes ~N s here``)."""
    return sentence.split(";")[0]


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(rendering.find_chromium() is None, reason="no Chromium executable")
def test_readme_block_counts_equal_a_fresh_run(tmp_path: Path) -> None:
    fig = collect(tmp_path / "data")

    # The run itself is sound: both crawls finished, the summary's record count is
    # what warcio reads back, the recrawl stored nothing new.
    assert fig.first.exit_code == 0 and fig.recrawl.exit_code == 0
    for run in (fig.first, fig.recrawl):
        assert run.warc_records == run.summary_records, run
        assert run.warc_files, f"{run.name} wrote no WARC file"
    assert fig.recrawl.articles["new"] == 0
    assert fig.recrawl.stored == fig.first.stored > 0
    assert fig.recrawl.not_modified > 0 and fig.recrawl.record_types["revisit"] > 0

    text = README.read_text(encoding="utf-8")
    written = parse_table(between(text, BEGIN, END))
    fresh = parse_table(render_table(fig))
    for run in RUNS:
        assert run in written, f"README figures block has no {run!r} row"
        for column in COUNT_COLUMNS:
            assert written[run][column] == fresh[run][column], (
                f"README {run} / {column}: {written[run][column]!r}, a fresh run gives "
                f"{fresh[run][column]!r}: run benchmarks/readme_figures.py --update-readme")
    assert _counts_of(between(text, SENTENCE_BEGIN, SENTENCE_END)) == \
        _counts_of(render_sentence(fig))


def _run(name: str, pages: int, new: int, revisits: int) -> RunFigures:
    return RunFigures(
        name=name, exit_code=0, seconds=3.0, pages_fetched=pages,
        articles={"extracted": new + 1, "new": new, "unchanged": 0, "sections merged": 1},
        summary_records=3 + revisits, requests=pages, conditional=0, not_modified=0,
        warc_files=["a.warc.gz"], warc_bytes=1000,
        record_types=Counter({"warcinfo": 1, "request": 1, "response": 1,
                              "revisit": revisits}),
        stored=new)


def test_update_readme_rewrites_only_between_the_markers(tmp_path: Path) -> None:
    fig = Figures(
        machine=Machine(cores=2, cpu="Test CPU", ram_gib=8.0, date="2026-12-02 10:00 UTC",
                        commit="abc1234", load=1.0),
        first=_run("first crawl", 10, 4, 0), recrawl=_run("recrawl", 5, 0, 2))
    before = (f"# title\nintro: {SENTENCE_BEGIN}old words{SENTENCE_END} (see below).\n\n"
              f"## Measured\n{BEGIN}\nold table\n{END}\n\n| what | figure |\n|---|---|\n"
              "| other | kept |\n")
    readme = tmp_path / "README.md"
    readme.write_text(before, encoding="utf-8")

    update_readme(readme, fig)

    after = readme.read_text(encoding="utf-8")
    assert "old table" not in after and "old words" not in after
    assert after.startswith("# title\nintro: ")
    assert after.endswith(f"{END}\n\n| what | figure |\n|---|---|\n| other | kept |\n")
    table = parse_table(between(after, BEGIN, END))
    assert table["first crawl"]["pages fetched"] == "10"
    assert table["recrawl"]["WARC records"] == "5 (1 warcinfo, 1 request, 1 response, 2 revisit)"
    assert "abc1234" in after and "2 cores (Test CPU)" in after and "8.0 GiB RAM" in after
    assert "readme_figures.py --update-readme" in between(after, BEGIN, END)
    assert between(after, SENTENCE_BEGIN, SENTENCE_END).startswith(
        "0 new articles, 0 conditional requests")

    readme.write_text("# no markers\n", encoding="utf-8")
    with pytest.raises(FiguresError, match="figures:begin"):
        update_readme(readme, fig)
    assert readme.read_text(encoding="utf-8") == "# no markers\n"
