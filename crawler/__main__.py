"""`python -m crawler` is `gzarchive`."""

from crawler.cli import entry

entry()
