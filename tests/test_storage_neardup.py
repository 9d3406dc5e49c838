"""NearDuplicateIndex at the project's DEDUP_* settings (tests.helpers.dedup_params)
against a SecantusDB server: republished stories are found, unrelated stories built
from the same phrase bank are not; older stores are migrated.

``make_story``/``republish``/``fold`` generate realistic Guizhou-channel news text
(reused by tests/test_pipelines_dedup.py).
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import MongoClient

from storage import neardup, neardup_migrate
from storage.minhash import lsh_params, shingles
from storage.neardup import Decision, NearDuplicateIndex
from tests.helpers import dedup_params

#: The settings users get (crawler/settings.py DEDUP_*).
PARAMS = dedup_params()

# -- realistic text: one phrase bank shared by every story -------------------------

PLACES = ["贵阳", "遵义", "安顺", "毕节", "铜仁", "六盘水", "黔东南", "黔南", "黔西南",
          "凯里", "西江千户苗寨", "荔波小七孔", "黄果树瀑布", "梵净山", "镇远古镇", "花溪",
          "赤水", "平塘", "雷山", "从江", "黎平", "贵安新区"]
PEOPLE = ["来自美国的留学生", "法国摄影师", "英国教师", "俄罗斯游客", "泰国留学生",
          "德国工程师", "巴基斯坦留学生", "意大利厨师", "老挝学生", "日本茶艺师",
          "澳大利亚背包客", "肯尼亚博士生", "加拿大主播", "韩国设计师"]
NAMES = ["马克", "安娜", "彼得", "索菲亚", "约翰", "艾米丽", "阿里", "卢卡", "玛丽亚",
         "汤姆", "伊万", "莉莉", "大卫", "艾哈迈德", "诺拉", "山田"]
TOPICS = ["苗族刺绣", "侗族大歌", "蜡染技艺", "都匀毛尖", "湄潭翠芽", "酸汤鱼", "丝娃娃",
          "大数据产业", "乡村振兴", "村超足球赛", "村BA篮球赛", "天眼科学", "银饰锻造",
          "茶旅融合", "非物质文化遗产", "生态旅游", "跨境电商", "民族服饰", "山地运动",
          "桥梁工程", "中医药", "辣椒产业", "竹编手艺", "古法造纸"]
VERBS = ["体验了", "学习了", "参观了", "记录了", "走进了", "探访了", "参加了", "感受了",
         "品尝了", "拍摄了", "了解了", "见证了"]
EVENTS = ["国际交流活动", "文化体验周", "开放日活动", "主题论坛", "旅游推介会",
          "非遗展演", "青年交流营", "国际茶文化节", "民族文化节", "招商推介会"]
OPINIONS = ["这里的山水让我流连忘返", "贵州人民非常热情好客", "这是一次难忘的经历",
            "我想把这里的故事讲给更多朋友听", "传统文化在这里得到了很好的传承",
            "这里的发展速度让我惊讶", "我已经爱上了这片土地", "每一次来都有新的发现",
            "我希望明年还能再来", "这种生活方式让人羡慕"]
OFFICIALS = ["当地文旅部门负责人介绍", "活动主办方表示", "据了解", "记者了解到",
             "相关负责人表示", "据统计", "据介绍", "当地干部告诉记者"]
FACTS = ["今年以来已接待游客{n}万人次", "全年实现产值{n}亿元", "共有{n}个国家和地区的嘉宾参加",
         "带动当地{n}余户群众增收", "累计培训手工艺人{n}人", "相关产品出口到{n}个国家",
         "比去年同期增长{n}%", "吸引了{n}多名中外青年参与", "新建了{n}个体验基地"]
CLOSERS = ["下一步，当地将继续推动{t}与旅游深度融合", "据悉，{e}将持续到本月底",
           "未来，{p}将打造更多对外交流的平台", "活动现场，{t}展示吸引了众多观众驻足",
           "接下来，主办方还将举办多场{e}"]


def _sentence(rng: random.Random, place: str, topic: str, who: str, name: str) -> str:
    kind = rng.randrange(6)
    n = rng.randint(2, 980)
    if kind == 0:
        return f"{rng.choice(PLACES)}的{rng.choice(EVENTS)}上，{who}{name}{rng.choice(VERBS)}{topic}。"
    if kind == 1:
        return f"“{rng.choice(OPINIONS)}，”{name}说，“{rng.choice(OPINIONS)}。”"
    if kind == 2:
        return f"{rng.choice(OFFICIALS)}，{place}{rng.choice(FACTS).format(n=n)}。"
    if kind == 3:
        return (f"在{place}，{name}{rng.choice(VERBS)}{rng.choice(TOPICS)}，"
                f"还{rng.choice(VERBS)}{rng.choice(TOPICS)}。")
    if kind == 4:
        return rng.choice(CLOSERS).format(t=topic, e=rng.choice(EVENTS), p=place) + "。"
    return (f"{rng.randint(1, 12)}月{rng.randint(1, 28)}日，{who}{name}来到{place}，"
            f"{rng.choice(VERBS)}当地的{topic}。")


def make_story(seed: int, paragraphs: int | None = None) -> tuple[str, list[str]]:
    """A title and 6-10 paragraphs about a random foreigner, place and topic."""
    rng = random.Random(seed)
    place, topic = rng.choice(PLACES), rng.choice(TOPICS)
    who, name = rng.choice(PEOPLE), rng.choice(NAMES)
    title = f"{who}{name}在{place}{rng.choice(VERBS)}{topic}"
    count = paragraphs or rng.randint(6, 10)
    body = ["".join(_sentence(rng, place, topic, who, name) for _ in range(rng.randint(3, 5)))
            for _ in range(count)]
    return title, body


def republish(title: str, body: list[str], seed: int, *, change: int = 0,
              suffix: str = "") -> tuple[str, list[str]]:
    """The same story again: *suffix* on the title, *change* paragraphs rewritten."""
    rng = random.Random(seed)
    new_body = list(body)
    for index in rng.sample(range(len(body)), change):
        filler = make_story(seed * 7919 + index)[1]
        new_body[index] = filler[0]
    return title + suffix, new_body


def fold(text: str) -> str:
    """Folded text as pipelines.fingerprint.fold_text gives it for simplified input."""
    return re.sub(r"[\s\W_]+", "", text)


def folded(title: str, body: list[str]) -> str:
    return fold(title + "\n" + "\n".join(body))


def true_jaccard(a: str, b: str, size: int = 4) -> float:
    sa, sb = shingles(a, size), shingles(b, size)
    return len(sa & sb) / len(sa | sb)


# -- fixtures ------------------------------------------------------------------------

@pytest.fixture
def db(mongo_uri: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    client: MongoClient[Any] = MongoClient(mongo_uri)
    name = "neardup_" + re.sub(r"\W", "_", request.node.name)[:40]
    client.drop_database(name)
    try:
        yield client[name]
    finally:
        client.drop_database(name)
        client.close()


@pytest.fixture
def index(db: Any) -> NearDuplicateIndex:
    idx = NearDuplicateIndex(db, **PARAMS)
    idx.ensure_indexes()
    return idx


T0 = datetime(2025, 7, 6, 8, 0, tzinfo=UTC)


def url(n: int) -> str:
    return f"https://gz.cri.cn/n/20250706/{n:08d}-0000-0000-0000-000000000000.html"


# -- unit tests ------------------------------------------------------------------------

def test_parameters_come_from_datasketch_optimiser(db: Any) -> None:
    # rows as the recall-weighted optimiser picks them, bands from every permutation
    idx = NearDuplicateIndex(db, **PARAMS)
    assert (idx.bands, idx.rows) == lsh_params(PARAMS["threshold"], PARAMS["num_perm"])
    assert (idx.bands, idx.rows) == (42, 3)   # at 0.4 and 128 permutations
    assert lsh_params(0.5, 128) == (32, 4) and lsh_params(0.7, 128) == (18, 7)
    # neither misses a pair at the threshold more often than the optimiser's own choice
    for threshold in (0.4, 0.5, 0.7):
        bands, rows = lsh_params(threshold, 128)
        assert bands == 128 // rows
    # defaults are the production values (one home: crawler/settings.py measures them)
    plain = NearDuplicateIndex(db)
    assert (plain.threshold, plain.shingle, plain.num_perm) == (
        PARAMS["threshold"], PARAMS["shingle"], PARAMS["num_perm"])


def test_signature_is_stable_and_band_keys_have_the_documented_form(db: Any) -> None:
    a, b = NearDuplicateIndex(db, **PARAMS), NearDuplicateIndex(db, **PARAMS)
    text = folded(*make_story(1))
    sa, sb = a.signature(text), b.signature(text)
    assert list(sa.hashvalues) == list(sb.hashvalues)
    assert sa.keys == sb.keys and len(sa.keys) == a.bands
    assert all(re.fullmatch(r"\d+:[0-9a-f]{16}", key) for key in sa.keys)


def test_one_document_per_article_and_indexes(index: NearDuplicateIndex, db: Any) -> None:
    index.add(url(1), folded(*make_story(1)), T0)
    assert "neardup_bands" not in db.list_collection_names()
    (doc,) = list(db["neardup_sigs"].find({}, {"_id": 0}))
    assert set(doc) == {"url", "keys", "hashvalues", "published_at", "added", "original",
                        "num_perm", "shingle"}
    assert doc["keys"] == index.signature(folded(*make_story(1))).keys
    assert isinstance(doc["hashvalues"], bytes) and len(doc["hashvalues"]) == 4 * 128
    indexes = {tuple(k for k, _ in v["key"]): v for v in
               db["neardup_sigs"].index_information().values()}
    assert ("keys",) in indexes and indexes[("url",)].get("unique")


def _stages(plan: dict[str, Any]) -> list[str]:
    stages = [f"{plan.get('stage')}({plan.get('indexName', '')})"]
    for child in [plan.get("inputStage"), *plan.get("inputStages", [])]:
        if child:
            stages += _stages(child)
    return stages


def test_candidate_query_uses_the_keys_index(index: NearDuplicateIndex, db: Any) -> None:
    index.add_many([(url(i), folded(*make_story(i)), T0) for i in range(20)])
    keys = index.signature(folded(*make_story(3))).keys
    plan = db["neardup_sigs"].find({"keys": {"$in": keys}}, {"keys": 0}).explain()
    stages = _stages(plan["queryPlanner"]["winningPlan"])
    assert "IXSCAN(keys)" in stages and not any(s.startswith("COLLSCAN") for s in stages)


def test_republished_with_title_suffix_is_found(index: NearDuplicateIndex) -> None:
    title, body = make_story(2)
    index.add(url(2), folded(title, body), T0)
    again = folded(*republish(title, body, 2, suffix="（更新）"))
    hits = index.lookup(again)
    assert hits and hits[0][0] == url(2) and hits[0][1] > 0.9
    assert index.find_original(url(3), again, T0 + timedelta(days=1)) == url(2)


def test_exact_recrawl_and_edit_in_place_are_not_duplicates(index: NearDuplicateIndex,
                                                            db: Any) -> None:
    title, body = make_story(4)
    text = folded(title, body)
    index.add(url(4), text, T0)
    assert index.find_original(url(4), text, T0) is None
    edited = folded(*republish(title, body, 4, change=1))
    assert index.find_original(url(4), edited, T0) is None
    index.add(url(4), edited, T0)   # re-index replaces the old band keys
    assert index.count() == 1
    assert [u for u, _ in index.lookup(edited)] == [url(4)]
    stored = db["neardup_sigs"].find_one({"url": url(4)})
    assert stored["keys"] == index.signature(edited).keys


def test_earliest_published_wins_and_chains_point_to_the_first(
        index: NearDuplicateIndex) -> None:
    title, body = make_story(5)
    first = folded(title, body)
    second = folded(*republish(title, body, 5, suffix="（更新）"))
    index.add(url(51), second, T0 + timedelta(days=1), original=url(50))
    index.add(url(50), first, T0)
    third = folded(*republish(title, body, 6, change=1))
    assert index.find_original(url(52), third, T0 + timedelta(days=2)) == url(50)
    # an article older than every match is itself the original
    assert index.find_original(url(49), third, T0 - timedelta(days=1)) is None


def test_naive_and_aware_dates_compare(index: NearDuplicateIndex) -> None:
    title, body = make_story(7)
    index.add(url(70), folded(title, body), datetime(2025, 7, 6, 8, 0))  # naive = UTC
    again = folded(*republish(title, body, 7, suffix="（更新）"))
    assert index.find_original(url(71), again, T0 + timedelta(hours=1)) == url(70)
    assert index.find_original(url(71), again, None) == url(70)


def test_remove_and_empty_text(index: NearDuplicateIndex, db: Any) -> None:
    text = folded(*make_story(8))
    index.add(url(8), text, T0)
    index.remove(url(8))
    assert index.lookup(text) == [] and db["neardup_sigs"].count_documents({}) == 0
    index.add(url(9), "", T0)
    assert index.count() == 0 and index.lookup("") == []
    assert index.find_original(url(9), "", T0) is None


def spy_finds(index: NearDuplicateIndex, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The positional arguments of every find() the index sends to its collection."""
    calls: list[Any] = []
    coll = index._sigs

    class Spy:
        def find(self, *args: Any, **kwargs: Any) -> Any:
            calls.append(args)
            return coll.find(*args, **kwargs)

    monkeypatch.setattr(index, "_sigs", Spy())
    return calls


@pytest.mark.parametrize("related", [False, True])
def test_lookup_is_one_find(index: NearDuplicateIndex, monkeypatch: pytest.MonkeyPatch,
                            related: bool) -> None:
    title, body = make_story(10)
    index.add(url(10), folded(title, body), T0)
    calls = spy_finds(index, monkeypatch)
    query = republish(title, body, 10, suffix="（更新）") if related else make_story(11)
    hits = index.lookup(folded(*query))
    assert [u for u, _ in hits] == ([url(10)] if related else [])
    assert len(calls) == 1 and set(calls[0][0]) == {"keys"}
    assert not calls[0][1].get("keys")   # the band keys are not read back


def test_lookup_lists_the_keys_indexed_most_often_first(
        index: NearDuplicateIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    # SecantusDB checks each candidate against the $in list in order: the keys most
    # articles share go first (storage.neardup docstring). The order changes no result.
    title, body = make_story(30)
    first, second = folded(title, body), folded(*republish(title, body, 30, suffix="（更新）"))
    index.add(url(30), first, T0)
    index.add(url(31), second, T0 + timedelta(hours=1))
    shared = [k for k in index.signature(first).keys if k in set(index.signature(second).keys)]
    assert 0 < len(shared) < index.bands
    calls = spy_finds(index, monkeypatch)
    hits = index.lookup(first)
    sent = calls[0][0]["keys"]["$in"]
    assert sent[:len(shared)] == shared
    assert sorted(sent) == sorted(index.signature(first).keys)
    assert {u for u, _ in hits} == {url(30), url(31)}


def test_stop_bands_leave_common_keys_out_while_most_keys_remain(
        db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # DEDUP_STOP_SHARE: keys in more than the share of the indexed articles are not
    # queried, once stop_after articles were indexed; an article whose keys are mostly
    # such keys is looked up by all of them. Off (0) by default.
    index = NearDuplicateIndex(db, stop_share=0.25, stop_after=10)
    title, body = make_story(40)
    index.add_many([(url(i), folded(*make_story(i)), T0) for i in range(41, 51)])
    index.add(url(40), folded(title, body), T0)
    calls = spy_finds(index, monkeypatch)
    again = folded(*republish(title, body, 40, suffix="（更新）"))
    keys = index.signature(again).keys
    assert [u for u, _ in index.lookup(again)] == [url(40)]
    assert len(calls[-1][0]["keys"]["$in"]) == index.bands   # nothing common yet
    for _ in range(5):                     # 10 of its keys now in 5 of 16 articles
        index._frequency.add(keys[:10])
    assert index.find_original(url(60), again, T0 + timedelta(days=1)) == url(40)
    sent = calls[-1][0]["keys"]["$in"]
    assert sorted(sent) == sorted(keys[10:])
    for _ in range(5):                     # most keys common: all are queried
        index._frequency.add(keys)
    assert index.find_original(url(60), again, T0 + timedelta(days=1)) == url(40)
    assert len(calls[-1][0]["keys"]["$in"]) == index.bands
    assert NearDuplicateIndex(db).stop_share == 0.0
    with pytest.raises(ValueError, match="stop_share"):
        NearDuplicateIndex(db, stop_share=1.0)


def test_add_many(index: NearDuplicateIndex) -> None:
    stories = [make_story(100 + i) for i in range(20)]
    assert index.add_many([(url(100 + i), folded(*s), T0) for i, s in enumerate(stories)]) == 20
    assert index.count() == 20
    for i, (title, body) in enumerate(stories):
        assert index.lookup(folded(title, body))[0] == (url(100 + i), 1.0)


# -- accuracy on generated news ---------------------------------------------------------

N_STORIES = 60


def _rates(idx: NearDuplicateIndex) -> dict[str, float]:
    stories = [make_story(1000 + i) for i in range(N_STORIES)]
    idx.add_many([(url(1000 + i), folded(*s), T0) for i, s in enumerate(stories)])
    later = T0 + timedelta(days=1)
    found = {"suffix": 0, "one_paragraph": 0, "suffix_and_paragraph": 0}
    for i, (title, body) in enumerate(stories):
        variants = {
            "suffix": republish(title, body, i, suffix="（更新）"),
            "one_paragraph": republish(title, body, i, change=1),
            "suffix_and_paragraph": republish(title, body, i, change=1, suffix="（更新）"),
        }
        for kind, variant in variants.items():
            if idx.find_original(url(5000 + i), folded(*variant), later) == url(1000 + i):
                found[kind] += 1
    false_hits = 0
    unrelated = [make_story(9000 + i) for i in range(N_STORIES)]
    for i, story in enumerate(unrelated):
        if idx.find_original(url(9000 + i), folded(*story), later) is not None:
            false_hits += 1
    rates = {kind: count / N_STORIES for kind, count in found.items()}
    rates["false_positive"] = false_hits / N_STORIES
    return rates


def test_republished_found_and_unrelated_same_topic_not(index: NearDuplicateIndex) -> None:
    rates = _rates(index)
    assert rates["suffix"] == 1.0
    assert rates["one_paragraph"] >= 0.95
    assert rates["suffix_and_paragraph"] >= 0.95
    assert rates["false_positive"] == 0.0


def test_generated_unrelated_stories_really_share_phrases() -> None:
    # The negative set is meaningful only if unrelated stories overlap at all.
    a, b = folded(*make_story(1)), folded(*make_story(2))
    assert 0.03 < true_jaccard(a, b) < 0.4
    assert true_jaccard(a, b, PARAMS["shingle"]) > 0


def test_original_crawled_after_its_republication_adopts_it(index: NearDuplicateIndex) -> None:
    """Crawl order is not publication order: the later copy is re-pointed."""
    title, body = make_story(90)
    copy = folded(*republish(title, body, 90, suffix="（更新）"))
    assert index.find_original(url(91), copy, T0 + timedelta(days=1)) is None
    index.add(url(91), copy, T0 + timedelta(days=1))
    original = folded(title, body)
    assert index.find_original(url(90), original, T0) is None
    assert index.adopt_later(url(90), original, T0) == [url(91)]
    index.add(url(90), original, T0)
    # a third copy now points at the first version, not at the second
    third = folded(*republish(title, body, 92, suffix="（再更新）"))
    assert index.find_original(url(92), third, T0 + timedelta(days=2)) == url(90)
    # an even earlier version adopts the first one, but not copies already pointing to it
    assert index.adopt_later(url(93), original, T0 - timedelta(days=9)) == [url(90)]


# -- check_in: two workers at once -------------------------------------------------------

def test_check_in_points_copies_to_the_first_either_way(index: NearDuplicateIndex) -> None:
    title, body = make_story(300)
    copy = folded(*republish(title, body, 300, suffix="（更新）"))
    assert index.check_in(url(301), copy, T0 + timedelta(days=1)) == (None, [])
    # the original crawled after its republication adopts it
    assert index.check_in(url(300), folded(title, body), T0) == (None, [url(301)])
    third = folded(*republish(title, body, 302, change=1))
    assert index.check_in(url(302), third, T0 + timedelta(days=2)) == (url(300), [])
    recorded = {d["url"]: d["original"] for d in index._sigs.find({}, {"url": 1, "original": 1})}
    assert recorded == {url(300): None, url(301): url(300), url(302): url(300)}


def test_recrawl_keeps_the_order_of_equal_dates(index: NearDuplicateIndex, db: Any) -> None:
    # ``added`` breaks the tie between equal publication dates: a re-crawl of the first
    # copy must not make it the later one.
    title, body = make_story(310)
    first, copy = folded(title, body), folded(*republish(title, body, 310, suffix="（更新）"))
    assert index.check_in(url(311), first, T0) == (None, [])
    added = db["neardup_sigs"].find_one({"url": url(311)})["added"]
    assert index.check_in(url(310), copy, T0) == (url(311), [])
    # The first copy stays the original; the copy already pointing to it is listed
    # again so that a relink lost with a killed run is made again (idempotent).
    assert index.check_in(url(311), first, T0) == (None, [url(310)])
    assert index.check_in(url(310), copy, T0) == (url(311), [])
    assert db["neardup_sigs"].find_one({"url": url(311)})["added"] == added


def _steps(idx: NearDuplicateIndex, u: str, text: str, published: datetime | None
           ) -> tuple[list[Callable[[], None]], dict[str, Decision]]:
    """check_in of one worker as its three steps: add, look up and decide, record."""
    sig = idx.signature(text)
    state: dict[str, Decision] = {}

    def decide() -> None:
        state["decision"] = idx._decide(u, sig, published)

    return ([lambda: idx._put(u, sig, published), decide,
             lambda: idx._record(u, state["decision"])], state)


INTERLEAVINGS = sorted(set(itertools.permutations("AAABBB")))


@pytest.mark.parametrize("dates", ["a_first", "b_first", "equal", "equal_same_ms", "none"])
def test_two_workers_agree_in_every_interleaving(
        mongo_uri: str, db: Any, monkeypatch: pytest.MonkeyPatch, dates: str) -> None:
    """Two processes check in twin copies at once: whatever the order of their steps,
    exactly one copy is the original and the other points to it, in the index and in
    the articles as the store pipeline writes them (near_duplicate_of, then relinks)."""
    assert len(INTERLEAVINGS) == 20
    title, body = make_story(400)
    a, b = url(400), url(401)
    texts = {a: folded(title, body), b: folded(*republish(title, body, 400, suffix="（更新）"))}
    published = {"a_first": (T0, T0 + timedelta(hours=1)),
                 "b_first": (T0 + timedelta(hours=1), T0),
                 "equal": (T0, T0), "equal_same_ms": (T0, T0), "none": (None, None)}[dates]
    if dates == "equal_same_ms":   # both added in one millisecond: the url decides
        monkeypatch.setattr(neardup, "_now", lambda: datetime(2025, 7, 7, 1, 2, 3))
    clients = [MongoClient(mongo_uri) for _ in range(2)]
    try:
        workers = [NearDuplicateIndex(c[db.name], **PARAMS) for c in clients]
        for order in INTERLEAVINGS:
            db.drop_collection("neardup_sigs")
            workers[0].ensure_indexes()
            steps = {"A": _steps(workers[0], a, texts[a], published[0]),
                     "B": _steps(workers[1], b, texts[b], published[1])}
            for who in order:
                steps[who][0].pop(0)()
            docs = list(db["neardup_sigs"].find({}, {"keys": 0}))
            expected = min(docs, key=neardup.precedence)["url"]
            if dates in ("a_first", "equal_same_ms"):
                assert expected == a
            elif dates == "b_first":
                assert expected == b
            where = "".join(order)
            in_index = {d["url"]: d["original"] for d in docs}
            assert in_index == {expected: None, ({a, b} - {expected}).pop(): expected}, where
            # what the store makes of the two items
            decisions = {a: steps["A"][1]["decision"], b: steps["B"][1]["decision"]}
            stored = {u: d.original for u, d in decisions.items()}
            for u, d in decisions.items():
                for later in d.later:
                    stored[later] = u
            assert stored == in_index, where
    finally:
        for c in clients:
            c.close()


# -- migration from the band-document layout ---------------------------------------------

def _old_layout(db: Any, idx: NearDuplicateIndex, stories: list[tuple[int, str]]) -> None:
    """A store as the previous version wrote it: 30 band documents + 1 signature each."""
    added = datetime(2025, 7, 1)
    for n, text in stories:
        sig = idx.signature(text)
        db["neardup_bands"].insert_many([{"key": key, "url": url(n), "published_at": T0,
                                          "added": added} for key in sig.keys])
        db["neardup_sigs"].insert_one({"url": url(n),
                                       "hashvalues": sig.hashvalues.astype("<u4").tobytes(),
                                       "published_at": T0, "added": added, "original": None,
                                       "num_perm": idx.num_perm, "shingle": idx.shingle})
    db["neardup_bands"].create_index("key", name="key")
    db["neardup_bands"].create_index("url", name="url")
    db["neardup_sigs"].create_index("url", name="url", unique=True)


def test_migration_from_band_documents(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(neardup_migrate, "MIGRATION_BATCH", 3)   # several pages
    idx = NearDuplicateIndex(db, **PARAMS)
    stories = {500 + i: make_story(500 + i) for i in range(8)}
    texts = {n: folded(*story) for n, story in stories.items()}
    _old_layout(db, idx, list(texts.items()))
    # an interrupted earlier migration had already filled one
    db["neardup_sigs"].update_one({"url": url(500)},
                                  {"$set": {"keys": idx.signature(texts[500]).keys}})
    assert db["neardup_bands"].count_documents({}) == 8 * idx.bands

    idx.ensure_indexes()
    assert "neardup_bands" not in db.list_collection_names()
    for doc in db["neardup_sigs"].find():
        n = int(doc["url"].rsplit("/", 1)[1][:8])
        assert doc["keys"] == idx.signature(texts[n]).keys
    title, body = stories[503]
    again = folded(*republish(title, body, 503, change=1, suffix="（更新）"))
    assert idx.find_original(url(600), again, T0 + timedelta(days=1)) == url(503)
    assert idx.check_in(url(600), again, T0 + timedelta(days=1)) == (url(503), [])

    idx.ensure_indexes()   # idempotent
    assert idx.count() == 9
    assert [u for u, _ in idx.lookup(texts[505])] == [url(505)]


# -- migration from signatures of other settings (4-character shingles, 18 x 7 bands) ----

def _previous_version(db: Any, texts: dict[int, str]) -> NearDuplicateIndex:
    """A store as the previous version wrote it: DEDUP_THRESHOLD 0.7, 4-char shingles."""
    old = NearDuplicateIndex(db, threshold=0.7, shingle=4)
    old.ensure_indexes()
    db["store_meta"].delete_many({"_id": "neardup"})   # that version kept no record
    old.add_many([(url(n), text, T0 + timedelta(hours=n % 24)) for n, text in texts.items()])
    db["neardup_sigs"].update_one({"url": url(701)}, {"$set": {"original": url(700)}})
    return old


def test_signatures_of_other_settings_are_rebuilt_from_article_texts(
        db: Any, caplog: pytest.LogCaptureFixture) -> None:
    stories = {700 + i: make_story(700 + i) for i in range(6)}
    texts = {n: folded(*story) for n, story in stories.items()}
    _previous_version(db, texts)
    before = {d["url"]: d for d in db["neardup_sigs"].find()}
    asked: list[list[str]] = []

    def stored(urls: list[str]) -> dict[str, str]:   # article 705's text is not stored
        asked.append(urls)
        return {url(n): texts[n] for n in texts if url(n) in urls and n != 705}

    idx = NearDuplicateIndex(db, **PARAMS)
    with caplog.at_level("INFO", logger="storage.neardup_migrate"):
        idx.ensure_indexes(stored)
    assert sorted(u for batch in asked for u in batch) == sorted(url(n) for n in texts)
    assert "5 signatures from article texts, 1 without a stored text" in caplog.text
    for doc in db["neardup_sigs"].find():
        n = int(doc["url"].rsplit("/", 1)[1][:8])
        if n == 705:   # kept as it was: never compared, re-indexed when re-crawled
            assert doc["shingle"] == 4 and doc["keys"] == before[doc["url"]]["keys"]
            continue
        sig = idx.signature(texts[n])
        assert (doc["shingle"], doc["num_perm"], doc["keys"]) == (PARAMS["shingle"],
                                                                 PARAMS["num_perm"], sig.keys)
        assert doc["hashvalues"] == sig.hashvalues.astype("<u4").tobytes()
        assert (doc["added"], doc["original"]) == (before[doc["url"]]["added"],
                                                   before[doc["url"]]["original"])
    assert db["store_meta"].find_one({"_id": "neardup"}, {"_id": 0}) == {
        "num_perm": idx.num_perm, "shingle": idx.shingle, "bands": 42, "rows": 3}
    title, body = stories[702]
    again = folded(*republish(title, body, 702, change=1, suffix="（更新）"))
    assert idx.find_original(url(799), again, T0 + timedelta(days=1)) == url(702)
    assert idx.lookup(texts[705]) == []
    assert idx.check_in(url(705), texts[705], T0) == (None, [])   # re-crawled
    assert [u for u, _ in idx.lookup(texts[705])] == [url(705)]
    asked.clear()
    idx.ensure_indexes(stored)   # recorded: no second scan
    assert asked == []


def test_without_article_texts_the_migration_waits(
        db: Any, caplog: pytest.LogCaptureFixture) -> None:
    texts = {710: folded(*make_story(710)), 711: folded(*make_story(711))}
    _previous_version(db, texts)
    idx = NearDuplicateIndex(db, **PARAMS)
    with caplog.at_level("WARNING", logger="storage.neardup_migrate"):
        idx.ensure_indexes()
    assert "2 signatures were made with other settings" in caplog.text
    assert db["store_meta"].find_one({"_id": "neardup"}) is None
    assert {d["shingle"] for d in db["neardup_sigs"].find()} == {4}
    idx.ensure_indexes(lambda urls: {url(n): texts[n] for n in texts})
    assert {d["shingle"] for d in db["neardup_sigs"].find()} == {PARAMS["shingle"]}


def test_other_lsh_bands_are_rekeyed_from_stored_signatures(index: NearDuplicateIndex,
                                                            db: Any) -> None:
    title, body = make_story(720)
    index.add(url(720), folded(title, body), T0)
    wider = NearDuplicateIndex(db, **{**PARAMS, "threshold": 0.5})   # 32 x 4 bands
    wider.ensure_indexes(lambda urls: pytest.fail("no text needed"))
    doc = db["neardup_sigs"].find_one({"url": url(720)})
    assert doc["keys"] == wider.signature(folded(title, body)).keys and len(doc["keys"]) == 32
    again = folded(*republish(title, body, 720, suffix="（更新）"))
    assert wider.find_original(url(721), again, T0 + timedelta(days=1)) == url(720)
