"""FLEET_* settings, read once (crawler/settings.py holds the defaults)."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass

from scrapy.settings import BaseSettings

from crawler.config import ConfigError
from storage.redis_frontier import FleetKeys

ROLES = ("crawl", "worker")


def new_worker_id() -> str:
    """Unique per process: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class FleetConfig:
    """FLEET_REDIS_URL (empty: not in fleet mode), FLEET_NAME (the frontier),
    FLEET_WORKER_ID, FLEET_ROLE (crawl: seeds; worker: joins), FLEET_LEASE_SECONDS
    (a worker silent this long is dead: its requests are reclaimed), FLEET_POLL_INTERVAL
    (how often an idle worker looks for work), FLEET_WAIT (stay when the frontier is
    empty), FLEET_SHARED_THROTTLE (one per-host delay for the fleet)."""

    redis_url: str
    name: str
    worker_id: str
    role: str
    lease_seconds: float
    poll_interval: float
    wait: bool
    shared_throttle: bool

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> FleetConfig:
        cfg = cls(redis_url=str(settings.get("FLEET_REDIS_URL") or ""),
                  name=str(settings.get("FLEET_NAME") or "default"),
                  worker_id=str(settings.get("FLEET_WORKER_ID") or new_worker_id()),
                  role=str(settings.get("FLEET_ROLE") or "crawl"),
                  lease_seconds=settings.getfloat("FLEET_LEASE_SECONDS", 15.0),
                  poll_interval=settings.getfloat("FLEET_POLL_INTERVAL", 0.5),
                  wait=settings.getbool("FLEET_WAIT"),
                  shared_throttle=settings.getbool("FLEET_SHARED_THROTTLE", True))
        if cfg.role not in ROLES:
            raise ConfigError(f"FLEET_ROLE must be one of {', '.join(ROLES)}, got {cfg.role!r}")
        if cfg.lease_seconds < 1:
            raise ConfigError(f"FLEET_LEASE_SECONDS must be >= 1, got {cfg.lease_seconds}")
        if not 0 < cfg.poll_interval <= cfg.lease_seconds / 2:
            raise ConfigError("FLEET_POLL_INTERVAL must be > 0 and at most half of "
                              "FLEET_LEASE_SECONDS")
        if cfg.redis_url and not cfg.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(f"FLEET_REDIS_URL must be a redis:// URL, got {cfg.redis_url!r}")
        return cfg

    @property
    def enabled(self) -> bool:
        return bool(self.redis_url)

    @property
    def keys(self) -> FleetKeys:
        return FleetKeys(self.name)


def enabled(settings: BaseSettings) -> bool:
    return bool(settings.get("FLEET_REDIS_URL"))
