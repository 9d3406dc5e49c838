"""Exceptions of the WARC storage layer."""

from __future__ import annotations


class WarcError(Exception):
    """Base class of WARC storage errors."""


class WarcWriterClosed(WarcError):
    """A record was written after :meth:`WarcWriter.close`."""


class ToolNotFound(WarcError):
    """An external command (pywb's ``wayback``/``wb-manager``) could not be found."""
