"""End to end: recrawls are conditional and find exactly what changed; one story = one
article across twins, tracking links, redirects, sections and separate runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import crawl, export, run_cli

pytestmark = pytest.mark.slow

LAOWAI_T, HI_T = "老外在貴州", "Hi,貴州!"


def _article_paths(log: list[Any]) -> list[Any]:
    return [e for e in log if e.path.startswith(("/n/", "/20")) and e.method == "GET"]


def test_recrawl_of_unchanged_replica_sends_only_conditional_requests(
        replica_factory: Any, tmp_path: Path) -> None:
    rep = replica_factory()
    first = crawl(rep.url, tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    first_requests = len(rep.log)
    rep.clear_log()
    second = crawl(rep.url, tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    articles = _article_paths(rep.log)
    assert articles, "the recrawl fetched no article at all"
    for entry in articles:
        conditional = "if-none-match" in entry.headers or "if-modified-since" in entry.headers
        assert conditional, entry.path
        assert entry.status == 304, (entry.path, entry.status)
    assert len(rep.log) < first_requests / 2
    assert "0 new" in second.stdout and "0 revised" in second.stdout
    assert not [e.path for e in rep.log if "/gate/big5/" in e.path]


def test_recrawl_stores_exactly_the_new_and_edited_articles(
        replica_factory: Any, tmp_path: Path) -> None:
    rep = replica_factory()
    assert crawl(rep.url, tmp_path).returncode == 0
    before = {a["url"]: a for a in export(tmp_path)}
    new = rep.publish_new(2, section="老外在贵州")
    newest_old = max((t for t in rep.ground_truth() if t["url"] not in {n["url"] for n in new}
                      and "老外在贵州" in t["sections"]), key=lambda t: t["published_at"])
    edited = rep.edit_article(newest_old["url"])
    second = crawl(rep.url, tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "2 new" in second.stdout and "1 revised" in second.stdout, second.stdout[-1500:]
    after = {a["url"]: a for a in export(tmp_path)}
    assert set(after) - set(before) == {n["url"] for n in new}
    for n in new:
        assert after[n["url"]]["body"] == n["body"]
    assert after[edited["url"]]["body"] == edited["body"] != before[edited["url"]]["body"]
    changed = {u for u in before if after[u]["content_hash"] != before[u]["content_hash"]}
    assert changed == {edited["url"]}
    shown = run_cli("show", edited["url"], "--data-dir", str(tmp_path), "--json")
    revisions = json.loads(shown.stdout)["revisions"]
    assert len(revisions) == 1 and revisions[0]["body"] == before[edited["url"]]["body"]
    assert revisions[0]["warc"] == before[edited["url"]]["warc"]


@pytest.mark.parametrize("order", [(LAOWAI_T, HI_T), (HI_T, LAOWAI_T)])
def test_sections_merge_across_separate_runs(replica_factory: Any, tmp_path: Path,
                                             order: tuple[str, str]) -> None:
    rep = replica_factory()
    for section in order:
        proc = crawl(rep.url, tmp_path, section)
        assert proc.returncode == 0, proc.stderr[-3000:]
    truth = {t["url"]: t for t in rep.ground_truth()}
    got = {a["url"]: a for a in export(tmp_path)}
    assert set(got) == set(truth)
    both = [u for u, t in truth.items() if len(t["sections"]) == 2]
    assert both and all(got[u]["sections"] == truth[u]["sections"] for u in both)
    assert not [e.path for e in rep.log if "/gate/big5/" in e.path]


def test_twins_tracking_links_and_redirects_end_as_one_article(replica: Any,
                                                               tmp_path: Path) -> None:
    proc = crawl(replica.url, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    articles = export(tmp_path)
    assert len({a["url"] for a in articles}) == len(articles) == len(replica.ground_truth())
    aliases = [u for a in articles for u in a["urls"] if u != a["url"]]
    assert any("/gate/big5/" in u for u in aliases)
    assert any("utm_source" in u or "spm=" in u for u in aliases)
    assert any("/old/" in u for u in aliases)
    for article in articles:
        assert "/gate/big5/" not in article["url"] and "?" not in article["url"]
    near = [a for a in articles if a["near_duplicate_of"]]
    truth_near = {t["url"]: t["near_duplicate_of"] for t in replica.ground_truth()
                  if t["near_duplicate_of"]}
    assert {a["url"]: a["near_duplicate_of"] for a in near} == truth_near


def test_a_walk_cut_by_max_articles_is_resumed_next_run(replica_factory: Any,
                                                        tmp_path: Path) -> None:
    """A complete walk is on record, 8 new articles fill page 1 and half of page 2; a run
    capped at 5 articles stops on page 2; the next run stops early at page 1 (all known)
    yet resumes page 2, where the other 3 new articles are."""
    rep = replica_factory(page_size=5)
    assert crawl(rep.url, tmp_path, LAOWAI_T).returncode == 0
    new = {n["url"] for n in rep.publish_new(8, section="老外在贵州")}
    cut = crawl(rep.url, tmp_path, LAOWAI_T, "--max-articles", "5")
    assert cut.returncode == 0, cut.stdout[-2000:] + cut.stderr[-3000:]
    stored = {a["url"] for a in export(tmp_path)}
    assert 0 < len(new & stored) < len(new)
    log = tmp_path / "logs" / "gzarchive.log"
    assert "--max-articles reached on listing page 2" in log.read_text(encoding="utf-8")
    mark = len(log.read_text(encoding="utf-8"))
    resumed = crawl(rep.url, tmp_path, LAOWAI_T)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
    text = log.read_text(encoding="utf-8")[mark:]
    assert "resuming the listing walk cut in an earlier run at page 2" in text
    assert "page 1 holds only known articles; not walking further" in text
    got = {a["url"] for a in export(tmp_path)}
    assert got == {t["url"] for t in rep.ground_truth(["老外在贵州"])}
