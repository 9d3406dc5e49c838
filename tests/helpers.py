"""Shared test helpers: run the CLI in a subprocess, read exports back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


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
    args = ["crawl", "--portal-url", portal_url, "--data-dir", str(data_dir),
            "--set", "AUTOTHROTTLE_ENABLED=False", "--set", "PROGRESS_INTERVAL=2", *extra]
    if mongodb_uri:
        args += ["--mongodb-uri", mongodb_uri]
    return run_cli(*args)
