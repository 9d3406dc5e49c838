"""Errors of the crawl lifecycle: each carries the exit code and a one-line message."""

from __future__ import annotations

from crawler.run.exits import EXIT_ERROR, EXIT_USAGE


class RunError(Exception):
    """A crawl that cannot start or run; ``str()`` is the one line to print."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class SettingsError(RunError):
    """A setting whose value cannot work (named, with what it expects)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE)


class DataDirError(RunError):
    """The data directory cannot be created or written."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE)


__all__ = ["DataDirError", "RunError", "SettingsError"]
