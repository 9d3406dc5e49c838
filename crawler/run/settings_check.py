"""Check ``--set NAME=VALUE`` / ``scrapy crawl -s NAME=VALUE`` before a crawl starts.

A value is checked against the type of the setting's default (Scrapy's, the project's,
or :data:`EXTRA_TYPES` for settings the components read with a default in code) and
converted to it; a bad one raises :class:`~crawler.run.errors.SettingsError` naming the
setting and what it expects, so a crawl never starts on ``DOWNLOAD_TIMEOUT=abc``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from scrapy.settings import BaseSettings

from crawler.run.errors import SettingsError

BOOL_WORDS = {"1": True, "true": True, "0": False, "false": False}

# Settings our components read with a default in code (no entry in crawler/settings.py).
EXTRA_TYPES: dict[str, type] = {
    "PROGRESS_INTERVAL": float,
    "PROGRESS_BAR": bool,
    "PORTAL_INCREMENTAL": bool,
    "PORTAL_STOP_AFTER_KNOWN_PAGES": int,
    "DEDUP_NUM_PERM": int,
    "DEDUP_SHINGLE": int,
    "RENDER_ABORT_HOSTS": list,
    "RENDER_ABORT_RESOURCE_TYPES": list,
    "WARC_DIGEST_DB": str,
    "RUN_LIFECYCLE_ENABLED": bool,
    "RUN_SUMMARY": bool,
    "RUN_RECORD": bool,
    "RUN_ENTRY_POINT": str,
}


def parse_pairs(items: Iterable[str]) -> dict[str, str]:
    """``["A=1", "B=x"]`` -> ``{"A": "1", "B": "x"}``; a malformed item is an error."""
    pairs: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise SettingsError(f"a setting is NAME=VALUE, got {item!r}")
        pairs[name.strip()] = value
    return pairs


def expected_type(name: str, defaults: BaseSettings) -> type | None:
    """The type a value of *name* must have, or None when anything goes."""
    if name in EXTRA_TYPES:
        return EXTRA_TYPES[name]
    default = defaults.get(name)
    if default is None:
        return None
    if isinstance(default, bool):
        return bool
    if isinstance(default, (int, float)):
        return float if isinstance(default, float) else int
    if isinstance(default, (BaseSettings, dict)):
        return dict
    if isinstance(default, (list, tuple)):
        return list
    return str


def convert(name: str, value: str, kind: type | None) -> Any:
    """*value* as *kind*; raises SettingsError with what was expected."""
    text = value.strip()
    if kind is None or kind is str:
        return value
    if kind is bool:
        if text.lower() in BOOL_WORDS:
            return BOOL_WORDS[text.lower()]
        raise SettingsError(f"{name} expects true or false (or 1/0), got {value!r}")
    if kind in (int, float):
        try:
            number = float(text)
        except ValueError:
            raise SettingsError(f"{name} expects a number, got {value!r}") from None
        if kind is int and number.is_integer() and "." not in text:
            return int(number)
        return number
    if kind is list:
        if text.startswith("["):
            parsed = _json(name, text, "a JSON list or comma-separated values")
            if not isinstance(parsed, list):
                raise SettingsError(f"{name} expects a JSON list or comma-separated values, "
                                    f"got {value!r}")
            return parsed
        return [part.strip() for part in text.split(",") if part.strip()]
    parsed = _json(name, text, "a JSON object")
    if not isinstance(parsed, dict):
        raise SettingsError(f"{name} expects a JSON object, got {value!r}")
    return parsed


def _json(name: str, text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise SettingsError(f"{name} expects {what}, got {text!r}") from None


def check_settings(pairs: Mapping[str, str], defaults: BaseSettings) -> dict[str, Any]:
    """Every pair converted to its setting's type; the first bad one raises."""
    return {name: convert(name, value, expected_type(name, defaults))
            for name, value in pairs.items()}


def check_components(settings: BaseSettings) -> None:
    """Build every component's settings dataclass once, before the crawl starts.

    A combination that cannot work (``AUTOTHROTTLE_START_DELAY`` above the max,
    ``MONGODB_WRITE_CONCERN=w=banana``, ``DEDUP_THRESHOLD=2``) is then a usage error
    (exit 2) with the component's own one-line message, instead of a crawl that fails
    to start inside Scrapy.
    """
    from crawler.archive.config import WarcConfig
    from crawler.config import PortalConfig
    from crawler.spiders.listings import WalkConfig
    from crawler.throttle import ThrottleConfig
    from pipelines.dedup import DedupConfig
    from pipelines.store import StoreConfig

    for config in (PortalConfig, WalkConfig, WarcConfig, ThrottleConfig, DedupConfig,
                   StoreConfig):
        try:
            config.from_settings(settings)
        except (ValueError, TypeError) as exc:
            raise SettingsError(str(exc)) from None


__all__ = ["EXTRA_TYPES", "check_components", "check_settings", "convert", "expected_type",
           "parse_pairs"]
