"""Tests that drive a real headless Chromium through scrapy-playwright (marker ``browser``)."""
