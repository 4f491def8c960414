#!/usr/bin/env bash
# Crawler traps: requests spent in each trap of the trap site, and real
# pages found. The site (trawl-testsite --traps) has 20,723 real pages
# (20,000 products at /p?id=N, a 400-page product listing, a 300-page news
# listing, 20 archive pages, 3 doc pages) and six endless traps: a query
# calendar (/calendar?d=N linking d+1 and d+1000), a path calendar
# (/events/YYYY/MM/DD/), session ids in paths (/s/{sid}/…, a new sid in
# every link), endless pagination of the same content (/archive?page=N
# past page 20), faceted search (/search?brand&color&size&sort, keys in
# every order) and relative-link path growth (/docs/guide/guide/…).
# Requests per trap are the site's own counts; real pages found are the
# crawl's items checked against the site's ground truth.
#
#   bash bench/traps.sh                         # trawl, default settings
#   CRAWLERS=trawl,trawl-notraps,scrapy bash bench/traps.sh
#     trawl-notraps: --no-traps; both it and Scrapy are stopped at
#     MAX_PAGES (default 30000), since neither would stop by itself.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CRAWLERS="${CRAWLERS:-trawl}" PRODUCTS="${PRODUCTS:-20000}" CONC="${CONC:-64}"
MAX_PAGES="${MAX_PAGES:-30000}"
[ "${SKIP_BUILD:-0}" = 1 ] || (cd "$ROOT" && cargo build --release --quiet -p trawl -p trawl-testsite)
BIN="${TRAWL_BIN:-$ROOT/target/release/trawl}"
SITE_BIN="$ROOT/target/release/trawl-testsite"
SCRAPY="$ROOT/bench/.venv/bin/scrapy"
if [[ ",$CRAWLERS," == *",scrapy,"* && ! -x "$SCRAPY" ]]; then
  python3 -m venv "$ROOT/bench/.venv" && "$ROOT/bench/.venv/bin/pip" install -q scrapy
fi
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
WORK="$(mktemp -d)"
SITE_PID=""
cleanup() { [ -n "$SITE_PID" ] && kill "$SITE_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

"$SITE_BIN" --pages 0 --traps --trap-products "$PRODUCTS" --print-ground-truth 2>/dev/null | sort >"$WORK/truth"
echo "trap site: $(wc -l <"$WORK/truth") real pages, 6 traps; $(nproc) cores; $CONC connections"

start_site() {
  [ -n "$SITE_PID" ] && { kill "$SITE_PID" 2>/dev/null; wait "$SITE_PID" 2>/dev/null || true; }
  "$SITE_BIN" --addr "127.0.0.1:$PORT" --pages 0 --traps --trap-products "$PRODUCTS" --no-log >"$WORK/site.log" 2>&1 &
  SITE_PID=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/__testsite/stats" >/dev/null && return; sleep 0.05; done
  echo "trap site did not start" >&2; exit 1
}

report() {
  local name="$1" items="$2"
  curl -sf "http://127.0.0.1:$PORT/__testsite/stats" >"$WORK/stats.json"
  python3 - "$name" "$WORK/stats.json" "$WORK/truth" "$items" "$WORK/time" <<'PY'
import json, sys
from urllib.parse import urlsplit
name, stats, truth, items, timing = sys.argv[1:6]
s = json.load(open(stats))
real = set(l.strip() for l in open(truth) if l.strip())
found = set()
for line in open(items):
    try:
        rec = json.loads(line)
    except ValueError:
        continue
    u = urlsplit(rec.get("url", ""))
    found.add(u.path + ("?" + u.query if u.query else ""))
wall, user, sys_, rss = open(timing).read().split()[-4:]
traps = s.get("by_trap", {})
names = ["calendar-query", "calendar-path", "session-path", "pagination", "facets", "path-growth"]
print(f"{name:<14} {s['requests']:>8} {len(real & found):>6}/{len(real)} {100 * len(real & found) / len(real):6.2f}% "
      + " ".join(f"{traps.get(n, 0):>8}" for n in names)
      + f" {float(wall):7.1f} {(float(user) + float(sys_)):6.1f} {int(rss) // 1024:6}")
PY
}

printf '%-14s %8s %13s %7s %8s %8s %8s %8s %8s %8s %7s %6s %6s\n' crawler requests real_found recall \
  cal-q cal-path session paging facets growth wall_s cpu_s rss_mb
for crawler in ${CRAWLERS//,/ }; do
  start_site
  SEED="http://127.0.0.1:$PORT/"
  case "$crawler" in
    trawl)
      /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" "$BIN" crawl "$SEED" -q --concurrency "$CONC" \
        --per-host "$CONC" -o "$WORK/items.jsonl" --stats-json "$WORK/trawl-stats.json" || true ;;
    trawl-notraps)
      /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" "$BIN" crawl "$SEED" -q --concurrency "$CONC" \
        --per-host "$CONC" --no-traps --max-pages "$MAX_PAGES" -o "$WORK/items.jsonl" || true ;;
    scrapy)
      rm -f "$WORK/items.jsonl"
      /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" "$SCRAPY" runspider "$ROOT/bench/scrapy_spider.py" \
        -a "start=$SEED" -s CONCURRENT_REQUESTS="$CONC" -s CONCURRENT_REQUESTS_PER_DOMAIN="$CONC" \
        -s CLOSESPIDER_PAGECOUNT="$MAX_PAGES" -O "$WORK/items.jsonl:jsonlines" >/dev/null 2>&1 || true ;;
  esac
  report "$crawler" "$WORK/items.jsonl"
  if [ "$crawler" = trawl ] && [ -s "$WORK/trawl-stats.json" ]; then
    python3 - "$WORK/trawl-stats.json" <<'PY' >"$WORK/traps-found"
import json, sys
s = json.load(open(sys.argv[1]))
for t in s.get("traps", []):
    print(f"  trapped {t['pattern']}: {t['pages']} pages, {t['duplicates']} duplicates, {t['blocked_links']} links not followed")
print(f"  duplicates: {s.get('duplicate_pages', 0)} exact, {s.get('near_duplicate_pages', 0)} near")
PY
  fi
done
[ -s "$WORK/traps-found" ] && cat "$WORK/traps-found"
exit 0
