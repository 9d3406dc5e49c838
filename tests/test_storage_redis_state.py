"""storage.redis_state and storage.redis_frontier against a real redis-server: the shared
crawl state behaves as the SQLite one (same operations, same answers), page_walked is
one transaction, and a request taken by a worker is never lost: held until its article
is stored, reclaimed once the worker's lease runs out."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from storage.crawlstate import CrawlState
from storage.redis_frontier import FleetKeys, Frontier, entry_id
from storage.redis_state import RedisCrawlState
from tests.redis_fixtures import frontier_name, redis_client, redis_url  # noqa: F401


@pytest.fixture
def keys(frontier_name: str) -> FleetKeys:  # noqa: F811
    return FleetKeys(frontier_name)


def _same_operations(state: CrawlState | RedisCrawlState) -> dict[str, object]:
    """One script of crawl-state operations; what each backend answers."""
    state.add_pending("a", ["s1"], ["a", "a?x=1"])
    state.add_pending("b", ["s2"])
    merged_a = state.merge_pending("a", ["s2"], ["a2"])
    merged_c = state.merge_pending("c", ["s1"], [])
    state.mark_done(["b"])
    state.set_validators("a", '"e1"', "Mon", "h1")
    state.set_validators("a", '"e2"', None)
    state.remember_rendered("hi")
    walks = state.walks
    walks.schedule("s1", "p1", 1)
    walks.page_walked("s1", "p1", 1, links=10, next_url="p2")
    walks.page_walked("s1", "p2", 2, links=4, end=True)
    walks.schedule("s2", "q1", 1)
    walks.set_entry("s1", "p0")
    walks.set_entry("s1", "p1")  # the home page moved it: the last one counts
    walks.set_entry("s3", "r1")
    record = walks.record("s1")
    return {
        "pending": [(p.url, p.sections, sorted(p.urls)) for p in state.pending_articles()],
        "merged": (merged_a, merged_c),
        "validators": state.validators("a"),
        "known": (state.known("a"), state.known("b")),
        "rendered": state.rendered_sections(),
        "record": (record.complete, record.complete_pages, record.complete_last_url,
                   record.links_found, record.frontier, record.may_stop_at(2)),
        "frontiers": [(p.section, p.url, p.page) for p in walks.frontiers()],
        "entries": (walks.entries(), record.entry_url, walks.record("s2").entry_url),
    }


def test_redis_state_answers_as_the_sqlite_state(tmp_path: Path, redis_client: redis.Redis,  # noqa: F811
                                                 keys: FleetKeys) -> None:
    with CrawlState(tmp_path / "crawl.sqlite") as sqlite_state:
        want = _same_operations(sqlite_state)
    got = _same_operations(RedisCrawlState(redis_client, keys))
    # The pending row of the SQLite state keeps the aliases it was added with; Redis
    # keeps every link of the frontier, merged ones too.
    assert got["pending"] == [("a", ["s1", "s2"], ["a", "a2", "a?x=1"])]
    assert want["pending"] == [("a", ["s1", "s2"], ["a", "a2", "a?x=1"])]
    assert want["entries"] == ({"s1": "p1", "s3": "r1"}, "p1", None)
    for name in ("merged", "validators", "known", "rendered", "record", "frontiers",
                 "entries"):
        assert got[name] == want[name], name


def test_links_found_for_an_article_taken_elsewhere_are_late(redis_client: redis.Redis,  # noqa: F811
                                                             keys: FleetKeys) -> None:
    one = RedisCrawlState(redis_client, keys)
    two = RedisCrawlState(redis_client, keys)   # another worker's view
    one.add_pending("x", ["s1"], ["x"])
    assert one.late() == []
    two.add_pending("x", ["s1"], ["x"])          # nothing new: not late
    assert one.late() == []
    two.add_pending("x", ["s2"], ["x?from=s2"])   # a second section, found elsewhere
    one.mark_done(["x"])
    assert one.late() == ["x"]
    assert one.links("x") == (["s1", "s2"], ["x", "x?from=s2"])
    assert not two.merge_pending("x", ["s3"], [])  # stored already: not pending...
    assert one.links("x")[0] == ["s1", "s2", "s3"]  # ...but the link is kept for the merge
    one.merged("x")
    assert one.late() == []


def test_page_walked_is_one_transaction(redis_client: redis.Redis, keys: FleetKeys) -> None:  # noqa: F811
    walks = RedisCrawlState(redis_client, keys).walks
    walks.schedule("s", "p1", 1)
    calls: list[str] = []
    real = redis_client.pipeline

    def watching(transaction: bool = True, shard_hint: object = None) -> object:
        calls.append(f"pipeline(transaction={transaction})")
        return real(transaction=transaction, shard_hint=shard_hint)

    redis_client.pipeline = watching  # type: ignore[method-assign]
    try:
        walks.page_walked("s", "p1", 1, links=3, next_url="p2")
    finally:
        redis_client.pipeline = real  # type: ignore[method-assign]
    assert calls == ["pipeline(transaction=True)"]
    assert [(p.url, p.page) for p in walks.frontiers()] == [("p2", 2)]


def _push(client: redis.Redis, keys: FleetKeys, data: bytes, score: float = 0) -> None:
    client.zadd(keys.queue, {data: score})


def test_a_taken_request_is_held_until_stored_and_reclaimed_from_a_dead_worker(
        redis_client: redis.Redis, keys: FleetKeys) -> None:  # noqa: F811
    a = Frontier(redis_client, keys, "A", lease_seconds=1)
    b = Frontier(redis_client, keys, "B", lease_seconds=1)
    a.register("worker")
    b.register("worker")
    for i in range(3):
        _push(redis_client, keys, f"req{i}".encode(), score=-i)
    taken = [a.pop(), a.pop()]
    assert taken == [b"req2", b"req1"] and a.queued() == 1
    assert a.hold(entry_id(b"req2"), "http://x/article")
    assert b.reclaim_dead() == {}            # A's lease is alive
    assert b.must_wait()                     # A still has a request in flight
    assert a.ack(entry_id(b"req1"))
    assert not a.ack(entry_id(b"req1"))      # done once, counted once
    assert not b.ack(entry_id(b"req2"))      # not B's to finish
    assert redis_client.hgetall(keys.key("done")) == {b"A": b"1"}
    assert b.must_wait()                     # ... and one held, A not idle
    a.mark_idle(True)
    assert not b.must_wait()
    time.sleep(1.2)                          # A dies: its lease runs out
    assert b.reclaim_dead() == {"A": 1}
    assert b.reclaim_dead() == {}            # reclaimed once
    assert sorted(redis_client.zrange(keys.queue, 0, -1)) == [b"req0", b"req2"]
    assert b.reclaimed() == {"A": 1, "*total": 1}


def test_release_lets_go_of_held_requests(redis_client: redis.Redis, keys: FleetKeys) -> None:  # noqa: F811
    a = Frontier(redis_client, keys, "A")
    a.register("worker")
    _push(redis_client, keys, b"r")
    assert a.pop() == b"r"
    a.hold(entry_id(b"r"), "u")
    state = RedisCrawlState(redis_client, keys, a)
    state.add_pending("u", ["s"])
    state.mark_done(["u"])
    assert redis_client.hlen(keys.held("A")) == 0 and state.pending() == []
    assert a.pop() is None
