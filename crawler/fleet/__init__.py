"""Many workers on one shared frontier (Redis, via scrapy-redis) and one MongoDB.

``gzarchive crawl --redis-url URL`` seeds the frontier and works; ``gzarchive worker
--redis-url URL`` joins; ``gzarchive frontier status|clear`` shows and manages it.
Modules: config (FLEET_* settings), setup (the settings fleet mode changes, the crawl
state backend), queue (scheduler, leased queue, duplicate filter), leases (when a
request is done), politeness (one per-host delay for the fleet), robots (robots.txt once
per fleet), extension (heartbeat, idle and reclaim, the end of a worker), lease (the
per-frontier run lease), spider (the joining worker's spider), status (what ``frontier
status`` prints).
"""
