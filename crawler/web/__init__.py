"""The reading room: ``gzarchive serve``, a read-only web app over the archive
(articles, search, runs, replay of the WARC files). See crawler/web/app.py."""
