"""One crawl lifecycle for every entry point (``gzarchive crawl``, ``scrapy crawl``).

- :mod:`crawler.run.lifecycle`: the Scrapy extension holding the run lock, the log
  file, the summary, the ``crawl_runs`` record and the exit code of a crawl;
- :mod:`crawler.run.exits`: the exit codes and the one function that decides them;
- :mod:`crawler.run.summary`, :mod:`crawler.run.record`: what is printed and stored;
- :mod:`crawler.run.settings_check`: ``--set``/``-s`` values checked before a crawl;
- :mod:`crawler.run.runner`: drive a crawler process, one line for a failed start;
- :mod:`crawler.run.console`: one line per message on the terminal, tracebacks in the log.

The package imports nothing itself: ``crawler.run.exits`` stays cheap for every command.
"""
