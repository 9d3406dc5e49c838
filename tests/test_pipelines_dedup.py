"""NearDuplicatePipeline at the project's settings (tests.helpers.project_crawler)
against a SecantusDB server; its recall and precision on the replica's stories."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import opencc
import pytest
from pymongo import MongoClient
from scrapy.exceptions import NotConfigured

from crawler.items import ArticleItem, SectionLinkItem
from pipelines.dedup import NearDuplicatePipeline
from pipelines.fingerprint import item_text
from storage import neardup
from storage.neardup import NearDuplicateIndex
from tests.helpers import project_crawler, project_settings
from tests.replica import ReplicaConfig
from tests.replica.content import Article, build_articles
from tests.test_storage_neardup import make_story, republish

_counter = iter(range(10_000))


@pytest.fixture
def settings(mongo_uri: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    name = f"dedup_test_{next(_counter)}"
    yield {"MONGODB_URI": mongo_uri, "DATA_DIR": str(tmp_path), "MONGODB_DATABASE": name}
    client: MongoClient[Any] = MongoClient(mongo_uri)
    client.drop_database(name)
    client.close()


def build(settings: dict[str, Any]) -> NearDuplicatePipeline:
    """The pipeline as a crawl builds it: project settings plus the test's *settings*."""
    return NearDuplicatePipeline.from_crawler(project_crawler(**settings))


T0 = datetime(2025, 7, 6, 8, 0, tzinfo=UTC)


def article(n: int, title: str, body: list[str], published: datetime | None) -> ArticleItem:
    return ArticleItem(url=f"https://gz.cri.cn/n/20250706/{n:04d}.html", title=title,
                       body="\n".join(body), published_at=published, near_duplicate_of=None)


def run(pipeline: NearDuplicatePipeline, *items: Any) -> list[Any]:
    async def go() -> list[Any]:
        return [await pipeline.process_item(item) for item in items]
    return asyncio.run(go())


def stats(pipeline: NearDuplicatePipeline) -> dict[str, Any]:
    assert pipeline.crawler.stats is not None
    return pipeline.crawler.stats.get_stats()


def test_disabled_raises_not_configured(settings: dict[str, Any]) -> None:
    with pytest.raises(NotConfigured):
        build({**settings, "DEDUP_ENABLED": False})


def test_bad_threshold_rejected_at_start(settings: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="DEDUP_THRESHOLD"):
        build({**settings, "DEDUP_THRESHOLD": 1.5})


def test_production_settings_reach_the_index(settings: dict[str, Any]) -> None:
    project = project_settings()
    pipeline = build(settings)
    pipeline.open_spider()
    try:
        index = pipeline.index
        assert index is not None
        assert (index.threshold, index.shingle, index.num_perm) == (
            project.getfloat("DEDUP_THRESHOLD"), project.getint("DEDUP_SHINGLE"),
            project.getint("DEDUP_NUM_PERM"))
        # one home per fact: the storage defaults are the production values
        assert (neardup.DEFAULT_THRESHOLD, neardup.DEFAULT_SHINGLE, neardup.DEFAULT_NUM_PERM
                ) == (index.threshold, index.shingle, index.num_perm)
        assert (index.bands, index.rows) == (42, 3)
    finally:
        pipeline.close_spider()


def test_settings_read(settings: dict[str, Any]) -> None:
    pipeline = build({**settings, "DEDUP_THRESHOLD": 0.6, "DEDUP_NUM_PERM": 64})
    pipeline.open_spider()
    try:
        assert pipeline.index is not None
        assert (pipeline.index.threshold, pipeline.index.num_perm) == (0.6, 64)
        assert (pipeline.index.stop_share, pipeline.index.stop_after) == (0.0, 1000)
    finally:
        pipeline.close_spider()
    pipeline = build({**settings, "DEDUP_STOP_SHARE": 0.01, "DEDUP_STOP_AFTER": 50})
    assert (pipeline.config.stop_share, pipeline.config.stop_after) == (0.01, 50)
    with pytest.raises(ValueError, match="DEDUP_STOP_SHARE"):
        build({**settings, "DEDUP_STOP_SHARE": 1.5})


def test_republished_story_points_to_first_version(settings: dict[str, Any]) -> None:
    title, body = make_story(1)
    first = article(1, title, body, T0)
    again = article(2, *republish(title, body, 1, suffix="（更新）", change=1),
                    T0 + timedelta(days=1))
    other = article(3, *make_story(2), T0 + timedelta(days=1))
    pipeline = build(settings)
    pipeline.open_spider()
    try:
        out = run(pipeline, first, again, other)
    finally:
        pipeline.close_spider()
    assert [item["near_duplicate_of"] for item in out] == [None, first["url"], None]
    assert stats(pipeline)["dedup/checked"] == 3
    assert stats(pipeline)["dedup/near_duplicates"] == 1


def test_index_persists_across_runs_and_traditional_twin_matches(
        settings: dict[str, Any]) -> None:
    title, body = make_story(3)
    pipeline = build(settings)
    pipeline.open_spider()
    try:
        run(pipeline, article(10, title, body, T0))
    finally:
        pipeline.close_spider()
    # next run: the traditional-script text of a republication (as the gateway
    # serves it) folds to the same simplified text
    trad = opencc.OpenCC("s2t")
    title2, body2 = republish(title, body, 3, suffix="（更新）")
    later = article(11, trad.convert(title2), [trad.convert(p) for p in body2],
                    T0 + timedelta(days=1))
    pipeline = build(settings)
    pipeline.open_spider()
    try:
        (out,) = run(pipeline, later)
    finally:
        pipeline.close_spider()
    assert out["near_duplicate_of"] == "https://gz.cri.cn/n/20250706/0010.html"


def test_recrawl_of_same_url_and_other_items_pass(settings: dict[str, Any]) -> None:
    title, body = make_story(4)
    link = SectionLinkItem(url="https://gz.cri.cn/n/x.html")
    pipeline = build(settings)
    pipeline.open_spider()
    try:
        out = run(pipeline, article(20, title, body, T0), article(20, title, body, T0), link)
    finally:
        pipeline.close_spider()
    assert out[0]["near_duplicate_of"] is None and out[1]["near_duplicate_of"] is None
    assert out[2] is link and "near_duplicate_of" not in out[2].fields
    assert stats(pipeline).get("dedup/near_duplicates", 0) == 0
    assert stats(pipeline)["dedup/checked"] == 2


def test_concurrent_copies_of_one_story(settings: dict[str, Any]) -> None:
    title, body = make_story(5)
    items = [article(30 + i, title + ("（更新）" if i else ""), body, T0 + timedelta(hours=i))
             for i in range(4)]
    pipeline = build(settings)
    pipeline.open_spider()

    async def go() -> list[Any]:
        return list(await asyncio.gather(*(pipeline.process_item(i) for i in items)))
    try:
        out = asyncio.run(go())
    finally:
        pipeline.close_spider()
    originals = [item["near_duplicate_of"] for item in out]
    assert originals.count(None) == 1
    assert len({o for o in originals if o}) == 1


def test_embedded_store_when_no_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MONGODB_URI", raising=False)   # the add-on would take it
    pipeline = build({"MONGODB_URI": "", "DATA_DIR": str(tmp_path)})
    pipeline.open_spider()
    try:
        assert pipeline.index is not None
        (out,) = run(pipeline, article(40, *make_story(6), T0))
        assert out["near_duplicate_of"] is None
    finally:
        pipeline.close_spider()


def test_unreachable_store_passes_items_unchecked(tmp_path: Path) -> None:
    pipeline = build({"MONGODB_URI": "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300",
                      "DATA_DIR": str(tmp_path)})
    pipeline.open_spider()
    try:
        (out,) = run(pipeline, article(50, *make_story(7), T0))
    finally:
        pipeline.close_spider()
    assert out["near_duplicate_of"] is None
    assert stats(pipeline)["dedup/errors/unavailable"] == 1


def test_store_of_the_previous_settings_is_migrated_from_stored_articles(
        settings: dict[str, Any], mongo_uri: str) -> None:
    """A store indexed at 4-character shingles (the previous DEDUP_* values): the
    pipeline rebuilds its signatures from the ``articles`` at start-up, and a
    republication crawled next links to the stored story."""
    stories = {n: make_story(n) for n in range(70, 74)}
    client: MongoClient[Any] = MongoClient(mongo_uri)
    try:
        db = client[settings["MONGODB_DATABASE"]]
        old = NearDuplicateIndex(db, threshold=0.7, shingle=4)
        old.ensure_indexes()
        db["store_meta"].delete_many({})
        items = [article(n, title, body, T0) for n, (title, body) in stories.items()]
        old.add_many([(str(i["url"]), item_text(i["title"], i["body"]), T0) for i in items])
        db["articles"].insert_many([{"url": i["url"], "title": i["title"], "body": i["body"]}
                                    for i in items])
        pipeline = build(settings)
        pipeline.open_spider()
        try:
            title, body = stories[71]
            (out,) = run(pipeline, article(75, *republish(title, body, 71, change=1,
                                                          suffix="（更新）"),
                                           T0 + timedelta(days=1)))
        finally:
            pipeline.close_spider()
        assert out["near_duplicate_of"] == items[1]["url"]
        assert {d["shingle"] for d in db["neardup_sigs"].find()} == {
            project_settings().getint("DEDUP_SHINGLE")}
    finally:
        client.close()


@pytest.mark.parametrize("dates", ["equal", "second_earlier"])
def test_two_workers_with_twins_at_once(settings: dict[str, Any], dates: str) -> None:
    """Two pipelines (two crawl processes) on one database get twin copies at the
    same moment: one copy is the original, the other points to it, directly or by
    the relink the store pipeline applies (near_duplicates_found)."""
    title, body = make_story(8)
    second = T0 if dates == "equal" else T0 - timedelta(hours=1)
    items = [article(60, title, body, T0),
             article(61, *republish(title, body, 8, suffix="（更新）"), second)]
    pipelines = [build(settings), build(settings)]
    for pipeline in pipelines:
        pipeline.open_spider()

    async def go() -> list[Any]:
        return list(await asyncio.gather(*(p.process_item(i) for p, i in
                                           zip(pipelines, items, strict=True))))
    try:
        out = asyncio.run(go())
    finally:
        for pipeline in pipelines:
            pipeline.close_spider()
    stored = {item["url"]: item["near_duplicate_of"] for item in out}
    for item in out:
        for later in item.get("near_duplicates_found") or ():
            stored[later] = item["url"]
    originals = [u for u, o in stored.items() if o is None]
    assert len(originals) == 1
    assert set(stored.values()) == {None, originals[0]}
    if dates == "second_earlier":
        assert originals == [items[1]["url"]]


# -- recall and precision at the production settings, on the replica's stories ------------

S2T = opencc.OpenCC("s2t")
BEIJING = timezone(timedelta(hours=8))


def _rewrite(paras: list[str], rng: random.Random, pool: list[str], *, lead: bool = False,
             ) -> list[str]:
    out = list(paras)
    out[0 if lead else rng.randrange(1, len(out))] = rng.choice(pool)
    return out


def _added(paras: list[str], rng: random.Random, pool: list[str]) -> list[str]:
    at = rng.randrange(1, len(paras) + 1)
    return [*paras[:at], rng.choice(pool), *paras[at:]]


def _removed(paras: list[str], rng: random.Random) -> list[str]:
    gone = rng.randrange(1, len(paras))
    return [para for n, para in enumerate(paras) if n != gone]


def _punctuation(paras: list[str], rng: random.Random) -> list[str]:
    swaps = [("，", "、"), ("。", "！"), ("，", ", "), ("：", ":"), ("“", "「"), ("”", "」")]
    out = []
    for para in paras:
        for old, new in rng.sample(swaps, 2):
            para = para.replace(old, new, 1)
        out.append(para.replace("。", "。 ", 1))
    return out


#: How a story comes back republished: (title, paragraphs, rng, pool of other stories'
#: paragraphs) -> (title, paragraphs).
VARIANTS: dict[str, Callable[[str, list[str], random.Random, list[str]],
                             tuple[str, list[str]]]] = {
    "title suffix": lambda t, p, r, pool: (t + "（更新）", p),
    "paragraph rewritten": lambda t, p, r, pool: (t, _rewrite(p, r, pool)),
    "lead rewritten": lambda t, p, r, pool: (t, _rewrite(p, r, pool, lead=True)),
    "suffix + paragraph rewritten": lambda t, p, r, pool: (t + "（更新）", _rewrite(p, r, pool)),
    "paragraph added": lambda t, p, r, pool: (t, _added(p, r, pool)),
    "paragraph removed": lambda t, p, r, pool: (t, _removed(p, r)),
    "traditional twin": lambda t, p, r, pool: (S2T.convert(t), [S2T.convert(x) for x in p]),
    "punctuation edits": lambda t, p, r, pool: (t, _punctuation(p, r)),
    "figures corrected": lambda t, p, r, pool: (
        t, [re.sub(r"\d+", lambda m: str(int(m.group()) + 1), x) for x in p]),
}


@dataclass(frozen=True)
class Accuracy:
    """What the pipeline made of the corpus (see measure_accuracy)."""

    stories: int
    unrelated_pairs: int
    false_links: list[tuple[str, str]]       # (article, wrongly linked to)
    found: dict[str, tuple[int, int]]        # variant kind -> (linked right, total)

    @property
    def recall(self) -> float:
        return sum(ok for ok, _ in self.found.values()) / sum(n for _, n in self.found.values())

    @property
    def precision(self) -> float:
        right = sum(ok for ok, _ in self.found.values())
        return right / (right + len(self.false_links)) if right else 0.0

    def summary(self) -> str:
        kinds = ", ".join(f"{kind} {ok}/{n}" for kind, (ok, n) in self.found.items())
        return (f"{self.stories} stories, {self.unrelated_pairs} unrelated pairs: recall "
                f"{self.recall:.3f}, precision {self.precision:.3f}, "
                f"{len(self.false_links)} false links ({kinds})")


def replica_stories(per_section: int = 40) -> list[Article]:
    """The replica's stories (target and other sections, its own republications too)."""
    return build_articles(ReplicaConfig(articles_per_section=per_section))


def measure_accuracy(index: NearDuplicateIndex, arts: list[Article],
                     seed: int = 13) -> Accuracy:
    """Every original story indexed, each looked up (nothing else may match it: every
    unrelated pair is tried both ways), then every variant of each, a day later, asked
    for its original. Texts folded as the pipeline folds an item's title and body."""
    base = "https://gz.cri.cn"
    originals = [a for a in arts if a.duplicate_of is None]
    rng = random.Random(seed)

    def text(title: str, paras: list[str]) -> str:
        return item_text(title, "\n".join(paras))

    index.add_many([(base + a.path, text(a.title, a.paragraphs()), a.published.replace(
        tzinfo=BEIJING)) for a in originals])
    false_links = [(base + a.path, url) for a in originals
                   for url, _ in index.lookup(text(a.title, a.paragraphs()))
                   if url != base + a.path]
    cases: list[tuple[str, str, str, str, datetime]] = []   # kind, url, text, original, date
    for a in originals:
        pool = [p for other in rng.sample(originals, 6) if other is not a
                for p in other.paragraphs()[1:]]
        for n, (kind, make) in enumerate(VARIANTS.items()):
            title, paras = make(a.title, a.paragraphs(), rng, pool)
            cases.append((kind, f"{base}/n/{a.published:%Y%m%d}/{a.uid}-v{n}.html",
                          text(title, paras), base + a.path,
                          a.published + timedelta(days=1, hours=n)))
    for copy in (a for a in arts if a.duplicate_of is not None):   # the replica's own
        cases.append(("replica republication", base + copy.path,
                      text(copy.title, copy.paragraphs()), base + str(copy.duplicate_of),
                      copy.published))
    found: dict[str, tuple[int, int]] = {}
    for kind, url, variant, original, published in cases:
        linked = index.find_original(url, variant, published.replace(tzinfo=BEIJING))
        ok, total = found.get(kind, (0, 0))
        found[kind] = (ok + (linked == original), total + 1)
        if linked not in (None, original):
            false_links.append((url, str(linked)))
    return Accuracy(len(originals), len(originals) * (len(originals) - 1) // 2,
                    false_links, found)


def test_recall_and_precision_at_production_settings(settings: dict[str, Any]) -> None:
    """At the DEDUP_* values users get: every republication kind found (recall >= 0.95
    overall, >= 0.9 for each kind), no two unrelated stories linked (precision 1.0).
    The replica's stories share one phrase bank, so unrelated stories overlap a lot."""
    pipeline = build(settings)
    pipeline.open_spider()
    try:
        assert pipeline.index is not None
        accuracy = measure_accuracy(pipeline.index, replica_stories())
    finally:
        pipeline.close_spider()
    print(accuracy.summary())
    assert accuracy.stories >= 80 and len(accuracy.found) == len(VARIANTS) + 1
    assert accuracy.false_links == [], accuracy.summary()
    assert accuracy.precision == 1.0
    assert accuracy.recall >= 0.95, accuracy.summary()
    assert all(ok / n >= 0.9 for ok, n in accuracy.found.values()), accuracy.summary()


def test_recall_and_precision_with_stop_bands(settings: dict[str, Any],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """DEDUP_STOP_SHARE (opt-in) on the same corpus: keys held by more than 2 % of the
    indexed stories are left out of lookups (counted: some are), and every republication
    kind is still found as at the production settings, with no false link."""
    pipeline = build({**settings, "DEDUP_STOP_SHARE": 0.02, "DEDUP_STOP_AFTER": 50})
    pipeline.open_spider()
    left_out: list[int] = []
    try:
        index = pipeline.index
        assert index is not None
        common = index._frequency.common

        def counted(keys: list[str], share: float, after: int) -> set[str]:
            stop = common(keys, share, after)
            left_out.append(len(stop))
            return stop

        monkeypatch.setattr(index._frequency, "common", counted)
        accuracy = measure_accuracy(index, replica_stories())
    finally:
        pipeline.close_spider()
    print(accuracy.summary(), f"lookups {len(left_out)}, with stop keys "
          f"{sum(1 for n in left_out if n)}, keys left out {sum(left_out)}")
    assert sum(1 for n in left_out if n) > len(left_out) // 10   # the knob did something
    assert accuracy.false_links == [], accuracy.summary()
    assert accuracy.recall >= 0.95, accuracy.summary()
    assert all(ok / n >= 0.9 for ok, n in accuracy.found.values()), accuracy.summary()
