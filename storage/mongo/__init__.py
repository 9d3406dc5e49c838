"""MongoDB storage: where people query the archive (no Scrapy here).

client.open_database (MONGODB_URI or the embedded SecantusDB), articles.ArticleRepository,
runs.RunRepository, writer.BatchWriter + spool.Spool (durable batched writes that survive an
outage), embedded/server (one shared server process per data directory), terms/search
(Chinese keyword search in either script). Schema and indexes: README.md here.
"""
