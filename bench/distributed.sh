#!/usr/bin/env bash
# Distributed-crawl benchmark: pages/s with 1, 2 and 4 `trawl worker`
# processes sharing one crawl through one Redis (started here on a free
# port), on the local test site; then the per-URL cost of each frontier
# (memory, embedded fjall, Redis) from the push/pop micro-benchmark.
# Loopback only.
#
#   bash bench/distributed.sh            # PAGES=20000 WORKERS="1 2 4" CONC=64
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PAGES="${PAGES:-20000}" FANOUT="${FANOUT:-20}" CONC="${CONC:-64}" WORKERS="${WORKERS:-1 2 4}"
FB_URLS="${FB_URLS:-200000}" FB_HOSTS="${FB_HOSTS:-2000}"
OUT="$(mktemp -d)"
BIN="$ROOT/target/release"
command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }
(cd "$ROOT" && cargo build --release --quiet -p trawl -p trawl-testsite && cargo build --release --quiet -p trawl-frontier --example frontier_bench)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RPORT="$(free_port)"; SPORT="$(free_port)"
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$OUT" >/dev/null &
RPID=$!
"$BIN/trawl-testsite" --addr "127.0.0.1:$SPORT" --pages "$PAGES" --fanout "$FANOUT" --page-bytes 8000 --no-log >/dev/null &
SPID=$!
trap 'kill $RPID $SPID 2>/dev/null || true; rm -rf "$OUT"' EXIT
for _ in $(seq 100); do (echo PING | timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$RPORT; cat >&3; head -c5 <&3" 2>/dev/null | grep -q PONG) && break; sleep 0.1; done
sleep 0.3
TRUTH="$("$BIN/trawl-testsite" --pages "$PAGES" --fanout "$FANOUT" --page-bytes 8000 --print-ground-truth | wc -l)"
echo "site: $PAGES pages ($TRUTH reachable), fanout $FANOUT, one host; Redis on :$RPORT; $(nproc) cores"
echo
echo "| workers | pages | wall s | pages/s | Redis CPU s |"
echo "|---:|---:|---:|---:|---:|"
for n in $WORKERS; do
  crawl="bench$n"
  rcpu0=$(awk '{print $14+$15}' /proc/$RPID/stat)
  start=$(date +%s.%N)
  pids=()
  "$BIN/trawl" crawl "http://127.0.0.1:$SPORT/" --redis "redis://127.0.0.1:$RPORT" --crawl "$crawl" --fresh \
      -q -c "$CONC" --per-host "$CONC" -o "$OUT/w0.jsonl" 2>"$OUT/w0.err" & pids+=($!)
  for i in $(seq 1 $((n - 1))); do
    "$BIN/trawl" worker --redis "redis://127.0.0.1:$RPORT" --crawl "$crawl" \
        -q -c "$CONC" --per-host "$CONC" -o "$OUT/w$i.jsonl" 2>"$OUT/w$i.err" & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  end=$(date +%s.%N)
  rcpu1=$(awk '{print $14+$15}' /proc/$RPID/stat)
  pages=$(cat "$OUT"/w*.jsonl | wc -l)
  python3 - "$n" "$pages" "$start" "$end" "$rcpu0" "$rcpu1" "$TRUTH" <<'PY'
import sys, os
n, pages, s, e, r0, r1, truth = sys.argv[1:]
wall = float(e) - float(s); hz = os.sysconf("SC_CLK_TCK")
print(f"| {n} | {pages} | {wall:.2f} | {int(pages)/wall:,.0f} | {(int(r1)-int(r0))/hz:.1f} |")
if int(pages) != int(truth): print(f"WARNING: {pages} items, ground truth {truth}")
PY
  rm -f "$OUT"/w*.jsonl
done
echo
echo "Frontier cost per URL ($FB_URLS URLs over $FB_HOSTS hosts; push = every URL offered twice, pop = lease + fetched + ack):"
for kind in memory disk redis; do
  "$BIN/examples/frontier_bench" "$FB_URLS" "$FB_HOSTS" "$kind" "redis://127.0.0.1:$RPORT"
done
