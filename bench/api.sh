#!/usr/bin/env bash
# Scraper API benchmark, loopback only:
#  1. POST /v1/scrape with 100 concurrent clients (wrk from Debian, Lua
#     script bench/wrk_scrape.lua): requests/s, p50/p99 latency, server
#     peak RSS, errors;
#  2. the same crawl as a job through the API (POST /v1/crawls, items read
#     from the NDJSON stream to its end) and with `trawl crawl -o` (memory
#     frontier) and `trawl crawl --state` (the embedded frontier a job
#     uses, to resume after a restart): items/s of each, the API's
#     overhead.
#
# The test site is one host: the server's settings allow CONNS requests to
# it at once (`per_host`, 2 by default), or politeness, not the API, would
# set the latency.
#
#   bash bench/api.sh            # PAGES=20000 CONNS=100 SECS=20 CONC=64
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PAGES="${PAGES:-20000}" FANOUT="${FANOUT:-10}" CONNS="${CONNS:-100}" SECS="${SECS:-20}" CONC="${CONC:-64}"
OUT="$(mktemp -d)"
BIN="$ROOT/target/release"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
(cd "$ROOT" && cargo build --release --quiet -p trawl -p trawl-testsite)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SPORT="$(free_port)"; APORT="$(free_port)"
SITE="http://127.0.0.1:$SPORT"; API="http://127.0.0.1:$APORT"
"$BIN/trawl-testsite" --addr "127.0.0.1:$SPORT" --pages "$PAGES" --fanout "$FANOUT" --no-log >/dev/null &
SPID=$!
printf 'per_host = %s\nconcurrency = %s\n' "$CONNS" "$((CONNS * 2))" >"$OUT/server.toml"
"$BIN/trawl" serve --listen "127.0.0.1:$APORT" --data "$OUT/data" --config "$OUT/server.toml" --allow-private 2>"$OUT/serve.err" &
APID=$!
trap 'kill $SPID $APID 2>/dev/null || true; rm -rf "$OUT"' EXIT
for _ in $(seq 100); do curl -sf "$API/healthz" >/dev/null && curl -sf "$SITE/robots.txt" >/dev/null && break; sleep 0.1; done
echo "site: $PAGES pages, fanout $FANOUT; $(nproc) cores; $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
echo

echo "## POST /v1/scrape, $CONNS connections, ${SECS}s: cold (from the first contact with the site), then warm"
# The first contact with a host starts its pace at 100 requests/s, doubling
# every ~70 ms while answers are clean (slow start, fetch/src/pacing.rs):
# the cold run includes that second of waiting; the warm run is the steady
# state of a server whose targets it has met.
# robots.txt of the site is fetched once and cached.
curl -sf -X POST "$API/v1/scrape" -H 'Content-Type: application/json' -d "{\"url\": \"$SITE/p/1\"}" >/dev/null
echo "| run | requests/s | p50 ms | p90 ms | p99 ms | server CPU s | server peak RSS MB | non-2xx |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
declare -A waits
for phase in cold warm; do
  cpu0=$(awk '{print $14+$15}' /proc/$APID/stat)
  wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$ROOT/bench/wrk_scrape.lua" "$API" -- "$SITE" "$PAGES" >"$OUT/wrk.txt"
  cpu1=$(awk '{print $14+$15}' /proc/$APID/stat)
  rss=$(awk '/VmHWM/ {print $2}' /proc/$APID/status)
  python3 - "$OUT/wrk.txt" "$cpu0" "$cpu1" "$rss" "$phase" <<'PY'
import os, re, sys
text = open(sys.argv[1]).read()
cpu = (int(sys.argv[3]) - int(sys.argv[2])) / os.sysconf("SC_CLK_TCK")
def lat(p):
    m = re.search(rf"^\s*{p}%\s+([\d.]+)(us|ms|s)", text, re.M)
    v, u = float(m.group(1)), m.group(2)
    return v / 1000 if u == "us" else v * 1000 if u == "s" else v
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
errors = re.search(r"Socket errors:.*", text)
print(f"| {sys.argv[5]} | {rps:,.0f} | {lat(50):.1f} | {lat(90):.1f} | {lat(99):.1f} | {cpu:.1f} | {int(sys.argv[4])/1024:.0f} | {non2xx.group(1) if non2xx else 0} |")
if errors: print(errors.group(0))
PY
  waits[$phase]="$(curl -s "$API/metrics" | awk '/^trawl_pace_waits_total/ {print $2}')"
done
echo "requests held by the site's pace (trawl_pace_waits_total): ${waits[cold]} after the cold run, $((waits[warm] - waits[cold])) more in the warm one"
echo

echo "## One crawl of the site: trawl crawl vs a job through the API (concurrency $CONC)"
TRUTH="$("$BIN/trawl-testsite" --pages "$PAGES" --fanout "$FANOUT" --print-ground-truth | wc -l)"
ROUNDS="${ROUNDS:-3}"
: >"$OUT/times"
for round in $(seq "$ROUNDS"); do
  rm -rf "$OUT/state" "$OUT"/*.jsonl
  start=$(date +%s.%N)
  "$BIN/trawl" crawl "$SITE/" -q -c "$CONC" --per-host "$CONC" --max-pages $((PAGES * 2)) -o "$OUT/cli.jsonl" 2>/dev/null
  end=$(date +%s.%N)
  echo "cli $(wc -l <"$OUT/cli.jsonl") $start $end" >>"$OUT/times"
  start=$(date +%s.%N)
  "$BIN/trawl" crawl "$SITE/" -q -c "$CONC" --per-host "$CONC" --max-pages $((PAGES * 2)) --state "$OUT/state" -o "$OUT/state.jsonl" 2>/dev/null
  end=$(date +%s.%N)
  echo "state $(wc -l <"$OUT/state.jsonl") $start $end" >>"$OUT/times"
  start=$(date +%s.%N)
  id=$(curl -sf -X POST "$API/v1/crawls" -H 'Content-Type: application/json' \
    -d "{\"seeds\": [\"$SITE/\"], \"settings\": {\"concurrency\": $CONC, \"per_host\": $CONC, \"max_pages\": $((PAGES * 2))}}" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  curl -sfN "$API/v1/crawls/$id/items" >"$OUT/api.jsonl"
  end=$(date +%s.%N)
  echo "api $(wc -l <"$OUT/api.jsonl") $start $end" >>"$OUT/times"
done
python3 - "$OUT/times" "$TRUTH" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    kind, items, start, end = line.split()
    runs.setdefault(kind, []).append((int(items), float(end) - float(start)))
names = {"cli": "trawl crawl -o (memory frontier)",
         "state": "trawl crawl --state -o (embedded frontier, as jobs use)",
         "api": "POST /v1/crawls + item stream to its end"}
med = {k: statistics.median(t for _, t in v) for k, v in runs.items()}
print(f"| run (median of {len(runs['api'])}) | items | wall s | items/s |")
print("|---|---:|---:|---:|")
for k in ("cli", "state", "api"):
    items = runs[k][0][0]
    print(f"| {names[k]} | {items} | {med[k]:.2f} | {items/med[k]:,.0f} |")
print(f"\nAPI overhead on the crawl's time: {100*(med['api']/med['state'] - 1):+.1f} % against the same frontier, "
      f"{100*(med['api']/med['cli'] - 1):+.1f} % against the memory frontier (ground truth {sys.argv[2]} pages)")
if any(i != int(sys.argv[2]) for v in runs.values() for i, _ in v):
    print("WARNING: a run's item count differs from the ground truth")
PY
