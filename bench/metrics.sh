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
DOCS=/usr/share/doc/python3.11/html
need=()
[ -d "$DOCS" ] || need+=(python3.11-doc)
[ -x /usr/sbin/nginx ] || need+=(nginx-light)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
(cd "$ROOT" && cargo build --release --quiet -p trawl)
BIN="$ROOT/target/release/trawl"

WORK="$(mktemp -d)"
# nginx's workers (not root) read the site.
chmod 755 "$WORK"
NGINX_PID=""
trap '[ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null; rm -rf "$WORK"' EXIT
SITE="$WORK/site"
mkdir -p "$SITE"
{
  echo '<!doctype html><title>copies</title><ul>'
  for i in $(seq 0 $((COPIES - 1))); do
    ln -s "$DOCS" "$SITE/c$i"
    echo "<li><a href=\"c$i/index.html\">copy $i</a></li>"
  done
  echo '</ul>'
} >"$SITE/index.html"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cat >"$WORK/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/error.log;
events { worker_connections 4096; }
http {
  include /etc/nginx/mime.types;
  access_log off;
  sendfile on;
  keepalive_requests 100000;
  client_body_temp_path $WORK/tmp;
  proxy_temp_path $WORK/tmp;
  fastcgi_temp_path $WORK/tmp;
  uwsgi_temp_path $WORK/tmp;
  scgi_temp_path $WORK/tmp;
  server { listen 127.0.0.1:$PORT; root $SITE; }
}
CONF
mkdir -p "$WORK/tmp"
/usr/sbin/nginx -c "$WORK/nginx.conf" -p "$WORK" &
NGINX_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/index.html" >/dev/null && break; sleep 0.05; done
PAGES_HTML=$(find -L "$SITE" -name '*.html' | wc -l)
echo "site: $PAGES_HTML HTML files ($COPIES copies of python3.11-doc) on nginx $(/usr/sbin/nginx -v 2>&1 | cut -d/ -f2); $(nproc) cores; concurrency $CONC"

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
  /usr/bin/time -f '%U %S %M' -o "$WORK/time" "$BIN" crawl "http://127.0.0.1:$PORT/index.html" -q \
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
