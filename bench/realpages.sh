#!/usr/bin/env bash
# trawl vs wget2 (and Scrapy, for the record) on real HTML: Debian's
# python3.11-doc and postgresql-doc-15 replicated under COPIES path
# prefixes (19 copies: 32,281 HTML pages), served by Debian's nginx on
# loopback; every crawler with CONC connections to the one host, in the
# same run. Pages are counted from nginx's access log (HTML answered 200),
# CPU (user+sys) and peak RSS from /usr/bin/time. trawl writes full JSONL
# items; wget2 deletes what it fetched (links only).
#
#   bash bench/realpages.sh          # COPIES=19 CONC=64 RUNS=1 CRAWLERS=trawl,wget2
#   CRAWLERS=trawl,wget2,scrapy RUNS=3 bash bench/realpages.sh   # Scrapy stops at SCRAPY_PAGES (3000)
#   TRAWL_BIN=/path/to/an/older/trawl bash bench/realpages.sh    # before/after
#   CRAWLERS=trawl,trawl-nodup RUNS=5 bash bench/realpages.sh    # cost of SimHash + duplicate index + traps
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=bench/docsite.sh
source "$ROOT/bench/docsite.sh"
COPIES="${COPIES:-19}" DOCS="${DOCS:-python,postgresql}" CONC="${CONC:-64}"
RUNS="${RUNS:-1}" CRAWLERS="${CRAWLERS:-trawl,wget2}" SCRAPY_PAGES="${SCRAPY_PAGES:-3000}"
command -v wget2 >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wget2 >/dev/null; }
[ "${SKIP_BUILD:-0}" = 1 ] || (cd "$ROOT" && cargo build --release --quiet -p trawl)
BIN="${TRAWL_BIN:-$ROOT/target/release/trawl}"
SCRAPY="$ROOT/bench/.venv/bin/scrapy"
if [[ ",$CRAWLERS," == *",scrapy,"* && ! -x "$SCRAPY" ]]; then
  python3 -m venv "$ROOT/bench/.venv" && "$ROOT/bench/.venv/bin/pip" install -q scrapy
fi

WORK="$(mktemp -d)"
trap 'docsite_stop; rm -rf "$WORK"' EXIT
docsite_start "$WORK" "$COPIES" "$DOCS"
# Not pages: the same for every crawler.
SKIP_EXT="txt,zip,bz2,gz,tar,epub,pdf,png,jpg,jpeg,gif,svg,css,js,ico,woff,woff2,ttf"
SKIP_RE="\\.(${SKIP_EXT//,/|})\$"
echo "site: $(find -L "$WORK/site" -name '*.html' | wc -l) HTML files ($COPIES copies of $DOCS) on nginx $(/usr/sbin/nginx -v 2>&1 | cut -d/ -f2); $(nproc) cores; $CONC connections"
echo "$(wget2 --version 2>/dev/null | head -1 | cut -d' ' -f1-3); trawl $("$BIN" --version | cut -d' ' -f2)"

run() {
  local name="$1"; shift
  docsite_restart
  /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || true
  local log
  log="$(docsite_access_log)"
  python3 - "$name" "$log" "$WORK/time" <<'PY' | tee -a "$WORK/results"
import sys
name, log, timing = sys.argv[1:4]
pages = requests = 0
for line in open(log):
    requests += 1
    status, _, ctype, _ = (line.split(" ", 3) + ["", "", ""])[:4]
    if status == "200" and ctype.startswith("text/html"):
        pages += 1
wall, user, sys_, rss = open(timing).read().split()[-4:]
cpu = float(user) + float(sys_)
print(f"{name} {pages} {requests} {float(wall):.2f} {pages / float(wall):.0f} {cpu:.2f} {1000 * cpu / max(pages, 1):.3f} {int(rss) // 1024}")
PY
}

printf '%-11s %7s %8s %7s %8s %7s %9s %7s\n' crawler pages requests wall_s pages/s cpu_s cpu/1k_s rss_mb
for _ in $(seq "$RUNS"); do
  for crawler in ${CRAWLERS//,/ }; do
    case "$crawler" in
      trawl)
        rm -f "$WORK/trawl.jsonl"
        run trawl "$BIN" crawl "$DOCSITE_URL" -q --ignore-robots --concurrency "$CONC" --per-host "$CONC" \
          --max-pages 10000000 --exclude "$SKIP_RE" -o "$WORK/trawl.jsonl" ;;
      trawl-notraps)
        rm -f "$WORK/trawl.jsonl"
        run trawl-notraps "$BIN" crawl "$DOCSITE_URL" -q --ignore-robots --concurrency "$CONC" --per-host "$CONC" \
          --max-pages 10000000 --exclude "$SKIP_RE" --no-traps -o "$WORK/trawl.jsonl" ;;
      trawl-nodup)
        # The cost of SimHash, the duplicate index and trap detection:
        # the same crawl without them.
        rm -f "$WORK/trawl.jsonl"
        run trawl-nodup "$BIN" crawl "$DOCSITE_URL" -q --ignore-robots --concurrency "$CONC" --per-host "$CONC" \
          --max-pages 10000000 --exclude "$SKIP_RE" --duplicates off --no-traps -o "$WORK/trawl.jsonl" ;;
      wget2)
        rm -rf "$WORK/wget2"
        run wget2 wget2 -r -l inf --max-threads="$CONC" --delete-after -q -e robots=off \
          --reject="$SKIP_EXT" -P "$WORK/wget2" "$DOCSITE_URL" ;;
      scrapy)
        rm -f "$WORK/scrapy.jsonl"
        run scrapy "$SCRAPY" runspider "$ROOT/bench/scrapy_spider.py" -a "start=$DOCSITE_URL" \
          -s CONCURRENT_REQUESTS="$CONC" -s CONCURRENT_REQUESTS_PER_DOMAIN="$CONC" -s ROBOTSTXT_OBEY=False \
          -s CLOSESPIDER_PAGECOUNT="$SCRAPY_PAGES" -O "$WORK/scrapy.jsonl:jsonlines" ;;
    esac
  done
done | awk '{printf "%-11s %7s %8s %7s %8s %7s %9s %7s\n", $1, $2, $3, $4, $5, $6, $7, $8}'
python3 - "$WORK/results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
def med(name, i):
    vals = [float(r[i]) for r in rows if r[0] == name]
    return statistics.median(vals) if vals else None
t, w = med("trawl", 4), med("wget2", 4)
if t and w:
    print(f"\nmedian pages/s: trawl {t:.0f}, wget2 {w:.0f}: {t / w:.2f}x (target >= 1.2x)")
    print(f"median CPU per 1,000 pages: trawl {med('trawl', 6):.3f} s, wget2 {med('wget2', 6):.3f} s; "
          f"peak RSS: trawl {med('trawl', 7):.0f} MB, wget2 {med('wget2', 7):.0f} MB")
n = med("trawl-nodup", 4)
if t and n:
    print(f"\nmedian pages/s: trawl {t:.0f}, without SimHash/duplicates/traps {n:.0f}: cost {100 * (n - t) / n:.1f} % "
          f"(target < 5 %); CPU per 1,000 pages {med('trawl', 6):.3f} s vs {med('trawl-nodup', 6):.3f} s; "
          f"RSS {med('trawl', 7):.0f} vs {med('trawl-nodup', 7):.0f} MB")
PY
