"""One fleet context per crawler: config, Redis client, this worker's frontier view.

Components (scheduler, middlewares, extension, crawl state, run lease) are built
separately by Scrapy; they share the one built here (kept on the crawler, never at
module level) so the process has one worker id and one connection pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from crawler.fleet.config import FleetConfig
from storage.redis_frontier import Frontier
from storage.redis_state import RedisCrawlState

ATTR = "_gzarchive_fleet"


@dataclass
class FleetContext:
    config: FleetConfig
    client: redis.Redis
    frontier: Frontier
    state: RedisCrawlState
    lease: Any = None     # crawler.fleet.lease.FrontierLease of the seeding crawl


def fleet_context(crawler: Any) -> FleetContext:
    """The crawler's fleet context (built on first use; FLEET_REDIS_URL must be set)."""
    found = getattr(crawler, ATTR, None)
    if found is not None:
        return found  # type: ignore[no-any-return]
    config = FleetConfig.from_settings(crawler.settings)
    client = redis.Redis.from_url(config.redis_url, socket_timeout=30,
                                  socket_connect_timeout=10, retry_on_timeout=True)
    frontier = Frontier(client, config.keys, config.worker_id, config.lease_seconds)
    context = FleetContext(config, client, frontier,
                           RedisCrawlState(client, config.keys, frontier))
    setattr(crawler, ATTR, context)
    return context
