"""Scrapy commands of the project (COMMANDS_MODULE): ``crawl`` runs the crawl lifecycle."""
