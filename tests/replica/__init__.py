"""Offline replica of gz.cri.cn (国际在线 贵州频道) for tests and the demo.

``Replica(ReplicaConfig(...)).start()`` serves a deterministic fake portal on
127.0.0.1; ``ground_truth()`` says what a correct crawler must store.
"""

from __future__ import annotations

from .config import HI_GZ, LAOWAI, PROFILES, TARGET_SECTIONS, ReplicaConfig
from .replica import Replica
from .server import LogEntry

__all__ = ["HI_GZ", "LAOWAI", "PROFILES", "TARGET_SECTIONS", "LogEntry", "Replica", "ReplicaConfig"]
