#!/usr/bin/env bash
# The main job, offline: set up, start the replica of the portal on 127.0.0.1,
# crawl its two target sections with `gzarchive crawl`, then show what was archived.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
DATA=${DATA_DIR:-data/demo}
URLFILE=$(mktemp)
REPLICA=
trap 'kill $REPLICA 2>/dev/null || true; rm -f "$URLFILE"' EXIT
# The replica keeps one address (REPLICA_PORT, default 8765) so that running the demo
# again recrawls the same URLs into the same archive; a busy port falls back to any.
start_replica() {
    .venv/bin/python -m tests.replica --port "$1" --profile js --url-file "$URLFILE" &
    REPLICA=$!
    for _ in $(seq 50); do
        [ -s "$URLFILE" ] && return 0
        kill -0 "$REPLICA" 2>/dev/null || return 1
        sleep 0.2
    done
    return 1
}
start_replica "${REPLICA_PORT:-8765}" || start_replica 0
PORTAL=$(cat "$URLFILE")
echo "== replica of the portal at $PORTAL"
set +e
.venv/bin/gzarchive crawl --portal-url "$PORTAL" --data-dir "$DATA" 老外在貴州 'Hi,貴州!'
STATUS=$?
set -e
echo "== what was archived"
.venv/bin/gzarchive stats --data-dir "$DATA" || true
echo "== a few titles"
.venv/bin/gzarchive export --data-dir "$DATA" | head -n 5 | .venv/bin/python -c '
import json, sys
for line in sys.stdin:
    a = json.loads(line)
    print(" -", a["published_at"], "|", " / ".join(a["sections"]), "|", a["title"])' || true
echo "== data in $DATA: $(ls "$DATA"/warc/*.warc.gz 2>/dev/null | wc -l) WARC file(s), index $(ls "$DATA"/warc/*.cdxj 2>/dev/null | head -1)"
exit $STATUS
