"""Pytest fixtures: a session-wide replica and a factory for custom ones.

Import into a conftest with ``from tests.replica.fixtures import *  # noqa``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from .config import ReplicaConfig
from .replica import Replica

__all__ = ["replica", "replica_factory", "running_replica"]


@contextmanager
def running_replica(**overrides: Any) -> Iterator[Replica]:
    """A replica of ``ReplicaConfig(**overrides)`` served for the ``with`` block
    (module-scoped fixtures of test files build theirs with it)."""
    rep = Replica(ReplicaConfig(**overrides)).start()
    try:
        yield rep
    finally:
        rep.stop()


@pytest.fixture(scope="session")
def replica() -> Iterator[Replica]:
    """Default replica, plain HTML listings (no browser needed); do not mutate it."""
    with running_replica(js_section=None) as rep:
        yield rep


@pytest.fixture
def replica_factory() -> Iterator[Callable[..., Replica]]:
    """``replica_factory(**overrides)`` starts a fresh replica, stopped after the test."""
    started: list[Replica] = []

    def make(**overrides: Any) -> Replica:
        overrides.setdefault("js_section", None)
        rep = Replica(ReplicaConfig(**overrides)).start()
        started.append(rep)
        return rep

    yield make
    for rep in started:
        rep.stop()
