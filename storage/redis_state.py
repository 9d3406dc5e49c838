"""Crawl state shared by every worker of a frontier, in Redis: the same operations as
storage.crawlstate.CrawlState (pending articles, HTTP validators, sections that need a
browser) and storage.walks.WalkState (listing-walk progress), so any worker resumes any
other's work.

Besides the pending frontier, every section and URL an article was linked at in this
frontier is kept (``links``). A link found by one worker for an article another
worker is fetching (its request was a duplicate) grows that union: the article is then
*late* (``late()``), and a worker merges the union into the stored article when it
stops (crawler.fleet.extension). ``mark_done`` also releases the article's held
requests (storage.redis_frontier). ``page_walked`` is one MULTI/EXEC transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import redis

from storage.crawlstate import PendingArticle, Validators
from storage.redis_frontier import FleetKeys, Frontier
from storage.walks import FrontierPage, WalkRecord

# KEYS: pending, sections set, urls set, late; ARGV: now, insert flag, n sections, url,
# sections..., urls.... The links always grow; pending only on insert. 1: pending.
ADD = """
local existed = redis.call('EXISTS', KEYS[2]) == 1 or redis.call('EXISTS', KEYS[3]) == 1
local pending = redis.call('ZSCORE', KEYS[1], ARGV[4]) ~= false
local grew = 0
local n = tonumber(ARGV[3])
for i = 5, 4 + n do grew = grew + redis.call('SADD', KEYS[2], ARGV[i]) end
for i = 5 + n, #ARGV do grew = grew + redis.call('SADD', KEYS[3], ARGV[i]) end
if existed and grew > 0 then redis.call('SADD', KEYS[4], ARGV[4]) end
if pending then return 1 end
if ARGV[2] ~= '1' then return 0 end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
return 1
"""


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisWalkState:
    """:class:`storage.walks.WalkState` in Redis (one hash per section + a frontier hash)."""

    def __init__(self, client: redis.Redis, keys: FleetKeys) -> None:
        self.r = client
        self.keys = keys
        self._frontier = keys.key("walks", "frontier")
        self._entries = keys.key("walks", "entries")

    def _walk(self, section: str) -> str:
        return self.keys.key("walks", "section", section)

    @staticmethod
    def _field(section: str, url: str) -> str:
        return json.dumps([section, url], ensure_ascii=False)

    def record(self, section: str) -> WalkRecord:
        row = {_s(k): _s(v) for k, v in self.r.hgetall(self._walk(section)).items()}
        frontier = tuple(p for p in self.frontiers() if p.section == section)
        frontier = tuple(sorted(frontier, key=lambda p: p.page))
        return WalkRecord(section, row.get("complete_at") or None,
                          int(row.get("complete_pages", 0)),
                          row.get("complete_last_url") or None,
                          int(row.get("links_found", 0)), frontier,
                          row.get("entry_url") or None)

    def frontiers(self) -> list[FrontierPage]:
        pages = []
        for field, value in self.r.hgetall(self._frontier).items():
            section, url = json.loads(_s(field))
            info = json.loads(_s(value))
            pages.append((info["added"], info["page"], FrontierPage(section, url, info["page"])))
        return [p for _, _, p in sorted(pages, key=lambda t: (t[0], t[1]))]

    def schedule(self, section: str, url: str, page: int) -> None:
        self.r.hsetnx(self._frontier, self._field(section, url),
                      json.dumps({"page": page, "added": _now()}))

    def page_walked(self, section: str, url: str, page: int, *, links: int,
                    next_url: str | None = None, end: bool = False) -> None:
        now = _now()
        pipe = self.r.pipeline(transaction=True)
        pipe.hdel(self._frontier, self._field(section, url))
        if next_url is not None:
            pipe.hsetnx(self._frontier, self._field(section, next_url),
                        json.dumps({"page": page + 1, "added": now}))
        pipe.hincrby(self._walk(section), "links_found", links)
        pipe.hset(self._walk(section), "updated", now)
        if end:
            pipe.hset(self._walk(section), mapping={
                "complete_at": now, "complete_pages": page, "complete_last_url": url})
        pipe.execute()

    def drop(self, section: str, url: str) -> None:
        self.r.hdel(self._frontier, self._field(section, url))

    def set_entry(self, section: str, url: str) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self._walk(section), "entry_url", url)
        pipe.hset(self._entries, section, url)
        pipe.execute()

    def entries(self) -> dict[str, str]:
        return dict(sorted((_s(k), _s(v)) for k, v in self.r.hgetall(self._entries).items()))


class RedisCrawlState:
    """The crawl state of :class:`storage.crawlstate.CrawlState`, shared in Redis."""

    def __init__(self, client: redis.Redis, keys: FleetKeys,
                 frontier: Frontier | None = None) -> None:
        self.r = client
        self.keys = keys
        self.frontier = frontier
        self.walks = RedisWalkState(client, keys)
        self._add = client.register_script(ADD)
        self._pending = keys.key("pending")
        self._validators = keys.key("validators")
        self._late = keys.key("late")

    def open(self) -> RedisCrawlState:
        self.r.ping()
        return self

    def close(self) -> None:
        """Nothing to close: the client belongs to the caller."""

    def __enter__(self) -> RedisCrawlState:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _links(self, url: str) -> tuple[str, str]:
        return self.keys.key("links", "sections", url), self.keys.key("links", "urls", url)

    # -- frontier -----------------------------------------------------------------
    def add_pending(self, url: str, sections: Iterable[str], urls: Iterable[str] = ()) -> None:
        self._merge(url, sections, urls, insert=True)

    def merge_pending(self, url: str, sections: Iterable[str], urls: Iterable[str]) -> bool:
        return self._merge(url, sections, urls, insert=False)

    def _merge(self, url: str, sections: Iterable[str], urls: Iterable[str],
               insert: bool) -> bool:
        secs, seen = sorted(set(sections)), sorted(set(urls))
        keys = [self._pending, *self._links(url), self._late]
        args = [datetime.now(UTC).timestamp(), "1" if insert else "0", len(secs), url,
                *secs, *seen]
        return bool(self._add(keys=keys, args=args))

    def mark_done(self, urls: Iterable[str]) -> None:
        urls = list(urls)
        if not urls:
            return
        self.r.zrem(self._pending, *urls)
        if self.frontier is not None:
            self.frontier.release(urls)

    def pending(self) -> list[tuple[str, list[str]]]:
        return [(p.url, p.sections) for p in self.pending_articles()]

    def pending_articles(self) -> list[PendingArticle]:
        return [PendingArticle(url, *self.links(url))
                for url in (_s(u) for u in self.r.zrange(self._pending, 0, -1))]

    def links(self, url: str) -> tuple[list[str], list[str]]:
        """Every section and URL *url* was linked at in this frontier."""
        secs, seen = self._links(url)
        return (sorted(_s(s) for s in self.r.smembers(secs)),
                sorted(_s(u) for u in self.r.smembers(seen)))

    def late(self) -> list[str]:
        """Articles whose links grew after another worker took them (to merge)."""
        return sorted(_s(u) for u in self.r.smembers(self._late))

    def merged(self, url: str) -> None:
        self.r.srem(self._late, url)

    # -- validators -----------------------------------------------------------------
    def validators(self, url: str) -> Validators | None:
        raw = self.r.hget(self._validators, url)
        if raw is None:
            return None
        doc = json.loads(_s(raw))
        return Validators(doc.get("etag"), doc.get("last_modified"), doc.get("content_hash"))

    def set_validators(self, url: str, etag: str | None, last_modified: str | None,
                       content_hash: str | None = None) -> None:
        old = self.validators(url)
        if content_hash is None and old is not None:
            content_hash = old.content_hash
        self.r.hset(self._validators, url, json.dumps(
            {"etag": etag, "last_modified": last_modified, "content_hash": content_hash,
             "checked": _now()}))

    def forget(self, url: str) -> None:
        self.r.hdel(self._validators, url)

    def known(self, url: str) -> bool:
        return bool(self.r.hexists(self._validators, url))

    # -- sections whose listings need a browser ---------------------------------------
    def rendered_sections(self) -> set[str]:
        return {_s(s) for s in self.r.smembers(self.keys.key("rendered"))}

    def remember_rendered(self, section: str) -> None:
        self.r.sadd(self.keys.key("rendered"), section)


def _now() -> str:
    return datetime.now(UTC).isoformat()


__all__ = ["RedisCrawlState", "RedisWalkState"]
