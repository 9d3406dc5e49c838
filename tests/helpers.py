"""Shared test helpers: run the CLI in a subprocess, read exports back, build
components at the project's settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from scrapy import Spider
from scrapy.crawler import AsyncCrawlerRunner, Crawler, CrawlerRunner
from scrapy.settings import Settings
from scrapy.utils.reactor import is_reactor_installed
from scrapy.utils.spider import DefaultSpider
from scrapy.utils.test import get_reactor_settings

ROOT = Path(__file__).resolve().parent.parent
PROJECT_SETTINGS = "crawler.settings"
#: Added to every crawl by crawler.addon.PortalAddon: the run lock, log file and
#: summary of a crawl. A component test is not a crawl: without this it would hold
#: DATA_DIR's run lock and log to its file for the rest of the session.
CRAWL_LIFECYCLE = "crawler.run.lifecycle.CrawlLifecycle"


def project_settings(**overrides: Any) -> Settings:
    """The settings users get: Scrapy's defaults, then crawler/settings.py (the module
    scrapy.cfg names, as get_project_settings() reads it, whatever the working
    directory), then *overrides* at command-line priority (as ``--set``/``-s``)."""
    settings = Settings()
    settings.setmodule(PROJECT_SETTINGS, priority="project")
    settings.setdict(overrides, priority="cmdline")
    return settings


def project_crawler(spidercls: type[Spider] | None = None, **overrides: Any) -> Crawler:
    """A crawler as ``scrapy.utils.test.get_crawler`` builds one, but at the project's
    settings (add-ons applied) plus only the per-test *overrides* (DATA_DIR,
    MONGODB_URI, ...). Build components from it with ``Component.from_crawler``.

    Two things differ from a crawl, both about the test process rather than the
    component: the reactor settings are the ones this process runs
    (``get_reactor_settings``), and the crawl lifecycle extension is left out.
    """
    settings = project_settings(**overrides)
    settings.setdict(get_reactor_settings(), priority="cmdline")
    extensions = settings.getdict("EXTENSIONS")
    extensions[CRAWL_LIFECYCLE] = None
    settings.set("EXTENSIONS", extensions, priority="cmdline")
    runner: CrawlerRunner | AsyncCrawlerRunner = (
        CrawlerRunner(settings) if is_reactor_installed() else AsyncCrawlerRunner(settings))
    crawler = runner.create_crawler(spidercls or DefaultSpider)
    crawler._apply_settings()
    return crawler


def run_cli(*args: str, env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``python -m crawler ARGS`` from the project root; never raises on exit code."""
    full_env = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "crawler", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, env=full_env)


def export(data_dir: Path, *extra: str, mongodb_uri: str | None = None) -> list[dict[str, Any]]:
    args = ["export", "--data-dir", str(data_dir), *extra]
    if mongodb_uri:
        args += ["--mongodb-uri", mongodb_uri]
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def crawl(portal_url: str, data_dir: Path, *extra: str,
          mongodb_uri: str | None = None) -> subprocess.CompletedProcess[str]:
    """``gzarchive crawl`` of *portal_url* into *data_dir* at the settings users get
    (crawler/settings.py: the recovering throttle, timeouts, batch sizes): a test that
    needs another value passes it in *extra*, with a comment saying why."""
    args = ["crawl", "--portal-url", portal_url, "--data-dir", str(data_dir), *extra]
    if mongodb_uri:
        args += ["--mongodb-uri", mongodb_uri]
    return run_cli(*args)


def dedup_params() -> dict[str, Any]:
    """``NearDuplicateIndex`` keyword arguments at the project's DEDUP_* settings."""
    settings = project_settings()
    return {"threshold": settings.getfloat("DEDUP_THRESHOLD"),
            "shingle": settings.getint("DEDUP_SHINGLE"),
            "num_perm": settings.getint("DEDUP_NUM_PERM")}
