"""Scrapy settings of the gzarchive crawler.

Component settings carry a prefix (PORTAL_*, WARC_*, MONGODB_*, DEDUP_*, RENDER_*);
`crawler.config.PortalConfig.from_settings` validates the PORTAL_* group at start-up.
The CLI overrides DATA_DIR-derived paths per run.
"""

from __future__ import annotations

BOT_NAME = "gzarchive"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"
COMMANDS_MODULE = "crawler.commands"   # `scrapy crawl`: gzarchive's lock, summary, exit codes

# --- the portal -----------------------------------------------------------
PORTAL_URL = "https://gz.cri.cn"
PORTAL_SECTIONS = ["老外在贵州", "Hi,贵州!"]
PORTAL_ALL_SECTIONS = False
PORTAL_MAX_ARTICLES = 0            # 0 = no limit
PORTAL_RENDER = "auto"             # auto | always | never
PORTAL_ALLOWED_HOSTS: list[str] = []   # extra hosts allowed besides the portal's own
PORTAL_ASSET_HOSTS = ["*.cri.cn", "*.cri.com.cn", "*.crionline.cn"]
PORTAL_GATEWAY_HOSTS = ["big5.cri.cn"]
PORTAL_ARCHIVE_BOTH_SCRIPTS = False
PORTAL_TRACKING_PARAMS = [
    "utm_*", "spm", "from", "isappinstalled", "share*", "wx*", "fbclid", "gclid",
    "source", "src", "ref", "timestamp", "_t",
]
PORTAL_DOWNLOAD_IMAGES = True
# Rendered listing pages requested ahead of a JavaScript pager's next link, guessed from
# its numbered URLs (crawler/spiders/listings.py): 3 pages render at once instead of one
# after the other. 0 = page by page. Off with --max-articles and a shared frontier.
PORTAL_LISTING_LOOKAHEAD = 2
# Sections an earlier run found on the home page are walked beside it, not after it; the
# home page then confirms them (crawler/spiders/listings.py). Off with a shared frontier.
PORTAL_EARLY_LISTINGS = True
# A listing's next page is scheduled below its articles (0) and their images (-10): the
# scheduler hands it out once the page's articles are all out, so what waits in the
# scheduler is a page or two of articles, not the whole listing (bounded memory however
# long the section). The lookahead above still renders pages at once.
PORTAL_LISTING_PRIORITY = -20

# --- data directory (the CLI sets these from --data-dir) ----------------------
DATA_DIR = "data"
WARC_ENABLED = True
WARC_DIR = "data/warc"
WARC_PREFIX = "gzarchive"
WARC_MAX_SIZE = 1_000_000_000
WARC_OPERATOR = "gzarchive operator"
WARC_ARCHIVE_IMAGES = True

# --- MongoDB -------------------------------------------------------------------
MONGODB_URI = ""                   # empty = embedded SecantusDB under DATA_DIR
MONGODB_DATABASE = "gzarchive"
MONGODB_BATCH_SIZE = 25
MONGODB_RETRIES = 3
MONGODB_WRITE_CONCERN = ""         # e.g. "majority", "w=2,j=true"; "" = the URI's, else w=1,j=true

# --- near-duplicates (republished stories) ------------------------------------------
DEDUP_ENABLED = True
# A later article is a republication of an earlier one when the Jaccard similarity of
# their DEDUP_SHINGLE-character shingle sets, estimated from DEDUP_NUM_PERM MinHash
# permutations, is >= DEDUP_THRESHOLD (candidates from 42 LSH bands of 3 rows).
# Measured on the replica's stories, which share one phrase bank, each republished 9
# ways (title suffix （更新）; a paragraph, the lead, or a paragraph + suffix rewritten;
# a paragraph added or removed; traditional twin; punctuation; figures corrected):
# 88 stories, 3,828 unrelated pairs (tests/test_pipelines_dedup.py): recall 1.000,
# precision 1.000; 349 stories, 60,726 pairs: recall 0.999, no unrelated pair linked.
# Estimated similarity: unrelated stories at most 0.30; republications 5th percentile
# 0.53, lowest 0.37 (half of a 4-paragraph story rewritten).
# The earlier 4-character shingles cannot separate them (unrelated up to 0.59,
# republications down to 0.48): at 0.7 recall was 0.933 (0.81 for a paragraph
# rewritten), at 0.5 59 unrelated pairs were linked. Longer shingles keep the shared
# phrases of unrelated stories apart. Stored signatures of other settings are rebuilt
# from the articles at start-up (storage/neardup_migrate.py).
DEDUP_THRESHOLD = 0.4
DEDUP_SHINGLE = 12
DEDUP_NUM_PERM = 128
# Stop bands, off by default (0): once this process has indexed DEDUP_STOP_AFTER
# articles, a lookup leaves out the band keys held by more than DEDUP_STOP_SHARE of
# them (while at least half its keys remain). Bounds a lookup's candidates as the store
# grows (on the replica's text at 5,000 articles: a median 183 per lookup, the most
# common key in 10 % of articles); it can miss a republication whose shared bands are
# all such keys. At 0.005: store CPU 16.7 -> 7.7 ms an article at 5,000, same
# decisions on the replica (benchmarks/README.md, "Stop bands").
DEDUP_STOP_SHARE = 0.0
DEDUP_STOP_AFTER = 1_000

# --- many workers on one frontier (gzarchive crawl/worker --redis-url; crawler/fleet) ---
FLEET_REDIS_URL = ""               # empty = one process, crawl state under DATA_DIR
FLEET_NAME = "default"             # the frontier (keys gzarchive:NAME:*)
FLEET_WORKER_ID = ""               # empty = host-pid-random
FLEET_ROLE = "crawl"               # crawl: seeds and works; worker: joins
FLEET_LEASE_SECONDS = 15.0         # a worker silent this long: its requests are reclaimed
FLEET_POLL_INTERVAL = 0.5          # an idle worker looks for work this often
FLEET_WAIT = False                 # stay when the frontier is empty
FLEET_SHARED_THROTTLE = True       # one per-host delay for the fleet (crawler.throttle's)

# --- politeness and robustness ----------------------------------------------------
USER_AGENT = "gzarchive/0.1 (+https://github.com/gzarchive/gzarchive; archiving crawler)"
ROBOTSTXT_OBEY = True
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 4
# Scrapy starts this many worker tasks for the output of every response, and keeps all of
# them until its last item leaves the pipelines: at Scrapy's 100, ~91 KiB per response
# waiting on the store, ~18 KiB at 16 (our callbacks yield one item, or one listing's
# links). The backlog grows as the store slows in a long run (issue #15).
CONCURRENT_ITEMS = 16
DOWNLOAD_DELAY = 0
# crawler.throttle.RecoveringThrottle replaces Scrapy's AutoThrottle (EXTENSIONS below)
# with the same settings; 304s, small redirects and 404s lower the delay like 200s,
# 408/429/5xx/errors multiply it, Retry-After raises it, robots.txt Crawl-delay is a floor
# (crawler.crawldelay: held with AUTOTHROTTLE_ENABLED off too).
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 0.5
AUTOTHROTTLE_MAX_DELAY = 30
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0
AUTOTHROTTLE_BACKOFF_FACTOR = 2.0
AUTOTHROTTLE_CHEAP_STATUSES = [301, 302, 303, 307, 308, 404, 410]
AUTOTHROTTLE_CHEAP_MAX_SIZE = 65536
AUTOTHROTTLE_OBEY_CRAWL_DELAY = True
DOWNLOAD_TIMEOUT = 30
DOWNLOAD_MAXSIZE = 10 * 1024 * 1024
DOWNLOAD_WARNSIZE = 4 * 1024 * 1024
RETRY_ENABLED = True
RETRY_TIMES = 3
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]
RETRY_BACKOFF_BASE = 1.0
RETRY_BACKOFF_MAX = 60.0
RETRY_AFTER_MAX = 120.0
HTTPERROR_ALLOWED_CODES: list[int] = []
REDIRECT_ENABLED = True
COOKIES_ENABLED = False
REQUEST_FINGERPRINTER_CLASS = "crawler.urls.CanonicalRequestFingerprinter"

# --- Scrapy 2.19 housekeeping ---------------------------------------------------
REMOTE_CONTROL_ENABLED = False
TELNETCONSOLE_ENABLED = False
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
LOG_LEVEL = "INFO"
FEED_EXPORT_ENCODING = "utf-8"

DOWNLOADER_MIDDLEWARES = {
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "crawler.retry.BackoffRetryMiddleware": 550,
    "crawler.archive.middleware.WarcArchiveMiddleware": 950,
}

ITEM_PIPELINES = {
    "pipelines.normalise.NormalisePipeline": 100,
    "pipelines.dedup.NearDuplicatePipeline": 300,
    "pipelines.store.MongoStorePipeline": 500,
}

ADDONS = {"crawler.addon.PortalAddon": 0}

EXTENSIONS = {
    "scrapy.extensions.throttle.AutoThrottle": None,
    "crawler.throttle.RecoveringThrottle": 0,
    "crawler.crawldelay.CrawlDelay": 0,   # robots.txt Crawl-delay when the throttle is off
    "crawler.progress.ProgressLog": 500,
    "crawler.queuepeak.QueuePeak": 500,   # scheduler/peak_queued: the most requests waiting
}

# --- scrapy-playwright (only used for requests with meta["playwright"]) ---------
PLAYWRIGHT_BROWSER_TYPE = "chromium"
# No executable_path: crawler.rendering.find_chromium picks Debian's headless shell
# (half the CPU a page), else the full chromium; set one here or in GZARCHIVE_CHROMIUM.
PLAYWRIGHT_LAUNCH_OPTIONS = {
    "headless": True,
    "args": ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--no-first-run", "--disable-quic"],
}
PLAYWRIGHT_MAX_CONTEXTS = 2
PLAYWRIGHT_MAX_PAGES_PER_CONTEXT = 4
PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT = 30_000
# A rendered listing is read once no request of its page has been in flight for this
# long after the load event (crawler.rendering.NetworkQuiet; Playwright's networkidle
# waits 500 ms): long enough for a script's fetch and the images it inserts.
RENDER_QUIET_MS = 250
