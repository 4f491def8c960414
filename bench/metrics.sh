#!/usr/bin/env bash
# The cost of metrics, on real pages: Debian's python3.11-doc HTML (530
# pages) replicated under 60 path prefixes (31,800 pages), served by
# Debian's nginx on loopback, crawled by trawl with and without
# `--metrics-addr` (the sampler taking a dashboard sample every second,
# and /metrics scraped every second, far more often than Prometheus's
# usual 15 s), alternating, RUNS times each. Prints pages/s, CPU seconds
# (user+sys) and peak RSS per run, the medians, and the cost of metrics.
#
#   bash bench/metrics.sh            # RUNS=5 CONC=64 COPIES=60
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNS="${RUNS:-5}" CONC="${CONC:-64}" COPIES="${COPIES:-60}"
(cd "$ROOT" && cargo build --release --quiet -p trawl)
BIN="$ROOT/target/release/trawl"
# shellcheck source=bench/docsite.sh
source "$ROOT/bench/docsite.sh"
WORK="$(mktemp -d)"
trap 'docsite_stop; rm -rf "$WORK"' EXIT
docsite_start "$WORK" "$COPIES" python
echo "site: $(find -L "$WORK/site" -name '*.html' | wc -l) HTML files ($COPIES copies of python3.11-doc) on nginx $(/usr/sbin/nginx -v 2>&1 | cut -d/ -f2); $(nproc) cores; concurrency $CONC"

# One crawl; prints "pages pages_per_sec cpu_secs peak_rss_mb".
crawl() {
  local mode="$1" out="$WORK/items.jsonl" stats="$WORK/stats.json" extra=() scraper=""
  rm -f "$out" "$stats"
  if [ "$mode" = on ]; then
    local mport
    mport="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    extra=(--metrics-addr "127.0.0.1:$mport")
    (while sleep 1; do curl -s "http://127.0.0.1:$mport/metrics" >/dev/null || true; done) &
    scraper=$!
  fi
  /usr/bin/time -f '%U %S %M' -o "$WORK/time" "$BIN" crawl "$DOCSITE_URL" -q \
    --ignore-robots --concurrency "$CONC" --per-host "$CONC" --max-pages 1000000 \
    -o "$out" --stats-json "$stats" "${extra[@]}" 2>>"$WORK/crawl.log"
  [ -n "$scraper" ] && kill "$scraper" 2>/dev/null
  python3 - "$stats" "$WORK/time" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
user, sys_, rss = open(sys.argv[2]).read().split()[-3:]
print(s["pages"], round(s["pages"] / s["elapsed_secs"]), round(float(user) + float(sys_), 2), int(rss) // 1024)
PY
}

crawl off >/dev/null || { echo "the warm-up crawl failed:"; cat "$WORK/error.log"; head -c 400 "$WORK/items.jsonl"; exit 1; }  # warm the page cache
grep -q "\"error\":null" "$WORK/items.jsonl" || { echo "the warm-up crawl failed:"; head -c 600 "$WORK/items.jsonl"; exit 1; }
echo
printf '%-4s %-8s %8s %10s %9s %9s\n' run metrics pages pages/s cpu_s rss_mb
for r in $(seq "$RUNS"); do
  for mode in off on; do
    read -r pages rate cpu rss < <(crawl "$mode")
    printf '%-4s %-8s %8s %10s %9s %9s\n' "$r" "$mode" "$pages" "$rate" "$cpu" "$rss"
    echo "$mode $rate $cpu" >>"$WORK/results"
  done
done
python3 - "$WORK/results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = lambda mode, i: statistics.median(float(r[i]) for r in rows if r[0] == mode)
off, on = med("off", 1), med("on", 1)
print()
print(f"median pages/s: metrics off {off:.0f}, on {on:.0f}: cost {100 * (off - on) / off:+.1f} % (target < 2 %)")
print(f"median CPU s:   metrics off {med('off', 2):.2f}, on {med('on', 2):.2f}")
PY
