#!/usr/bin/env bash
# Redis cost of a distributed crawl, and how it spreads over shards.
#
# HOSTS copies of the test site (one per port, so HOSTS politeness hosts)
# are crawled by WORKERS `trawl worker` processes through
#   single    one redis-server (one shard)
#   clusterN  a Redis Cluster of 3 masters on this box, the crawl in N shards
# Before each run the servers' command statistics are reset; after it the
# script prints pages/s, the Redis CPU per page (all servers, from
# /proc/PID/stat), script calls per page (EVALSHA in INFO commandstats;
# every frontier and duplicate-index operation is one), and the
# crawl's Redis capacity: pages / CPU seconds of the busiest server, the
# pages/s at which that server's one core would be saturated.
#
#   bash bench/redis_shards.sh     # MODES="single cluster1 cluster2 cluster3"
#   HOSTS=24 PAGES=1000 WORKERS=2 CONC=64 PER_HOST=8 SKIP_BUILD=1 VERBOSE=1
#   EXTRA="--duplicates off"   (more trawl flags; that one leaves out the
#   duplicate index, one script per page, to see the frontier alone)
#   REPLAY=1   (then each server's share replayed on a core of its own:
#   see the end of this script and bench/redis_replay.py)
# Then, on its own server, what one URL costs in Redis memory and CPU with
# the exact seen-set and with Bloom filters (examples/redis_footprint.rs;
# FOOTPRINT_URLS=200000, FOOTPRINT=0 to skip).
# Loopback only.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODES="${MODES:-single cluster1 cluster2 cluster3}"
HOSTS="${HOSTS:-24}" PAGES="${PAGES:-1000}" FANOUT="${FANOUT:-15}"
WORKERS="${WORKERS:-2}" CONC="${CONC:-64}" PER_HOST="${PER_HOST:-8}"
BIN="${BIN:-$ROOT/target/release}"
OUT="$(mktemp -d)"
command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }
[ -n "${SKIP_BUILD:-}" ] || (cd "$ROOT" && cargo build --release --quiet -p trawl -p trawl-testsite \
  && cargo build --release --quiet -p trawl-frontier --example redis_footprint)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# A cluster node's bus port is its port + 10000, so it must be <= 55535.
cluster_port() { python3 -c '
import socket
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", p + 10000)) if p <= 55535 else None
    except OSError:
        continue
    if p <= 55535: print(p); break'; }
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$OUT"; }
trap cleanup EXIT

# The sites.
SEEDS=()
for i in $(seq 1 "$HOSTS"); do
  port="$(free_port)"
  "$BIN/trawl-testsite" --addr "127.0.0.1:$port" --pages "$PAGES" --fanout "$FANOUT" --page-bytes 5000 --no-log >/dev/null &
  PIDS+=($!)
  SEEDS+=("http://127.0.0.1:$port/")
done
TRUTH="$("$BIN/trawl-testsite" --pages "$PAGES" --fanout "$FANOUT" --page-bytes 5000 --print-ground-truth | wc -l)"
TRUTH=$((TRUTH * HOSTS))

wait_redis() { for _ in $(seq 100); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "redis :$1 did not start" >&2; exit 1; }
start_redis() { # port [cluster]
  local extra=()
  [ "${2:-}" = cluster ] && extra=(--cluster-enabled yes --cluster-config-file "$OUT/nodes-$1.conf" --cluster-node-timeout 5000)
  redis-server --port "$1" --bind 127.0.0.1 --save "" --appendonly no --dir "$OUT" "${extra[@]}" >/dev/null &
  PIDS+=($!)
  wait_redis "$1"
}

# One plain server and one 3-master cluster, both kept for every run.
SINGLE="$(free_port)"; start_redis "$SINGLE"
CPORTS=()
if [[ "$MODES" == *cluster* ]]; then
  for _ in 1 2 3; do p="$(cluster_port)"; start_redis "$p" cluster; CPORTS+=("$p"); done
  redis-cli --cluster create "${CPORTS[@]/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes >/dev/null
  for _ in $(seq 100); do
    [ "$(redis-cli -p "${CPORTS[0]}" cluster info | tr -d '\r' | grep -c 'cluster_state:ok')" = 1 ] && break; sleep 0.1
  done
fi

cpu_of_port() { # utime+stime ticks of the server on this port
  local pid; pid="$(redis-cli -p "$1" info server | tr -d '\r' | awk -F: '/^process_id/{print $2}')"
  awk '{print $14+$15}' "/proc/$pid/stat"
}

# One crawl of every site by WORKERS workers through the frontier at $1,
# crawl name $2.
crawl_once() {
  local pids=() i p
  "$BIN/trawl" crawl "${SEEDS[@]}" --redis "$1" --crawl "$2" --fresh \
      -q -c "$CONC" --per-host "$PER_HOST" ${EXTRA:-} -o "$OUT/w0.jsonl" 2>"$OUT/w0.err" & pids+=($!)
  for i in $(seq 1 $((WORKERS - 1))); do
    "$BIN/trawl" worker --redis "$1" --crawl "$2" \
        -q -c "$CONC" --per-host "$PER_HOST" ${EXTRA:-} -o "$OUT/w$i.jsonl" 2>"$OUT/w$i.err" & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || { echo "worker failed:" >&2; cat "$OUT"/w*.err >&2; exit 1; }; done
}
forget_crawl() { # port crawl
  redis-cli -p "$1" --scan --pattern "trawl:{$2*" | xargs -r -n 500 redis-cli -p "$1" unlink >/dev/null 2>&1 || true
}
mode_servers() { # sets ports and url for a mode
  case "$1" in
    single) ports=("$SINGLE"); url="redis://127.0.0.1:$SINGLE" ;;
    cluster*) ports=("${CPORTS[@]}"); url="redis-cluster://127.0.0.1:${CPORTS[0]}?shards=${1#cluster}" ;;
    *) echo "unknown mode $1" >&2; exit 2 ;;
  esac
}

echo "site: $HOSTS hosts x $PAGES pages ($TRUTH reachable), fanout $FANOUT; $WORKERS workers x $CONC connections, $PER_HOST per host; $(nproc) cores"
echo
echo "| frontier | pages | wall s | pages/s | Redis CPU µs/page | scripts/page | busiest server µs/page | Redis capacity pages/s |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for mode in $MODES; do
  mode_servers "$mode"
  crawl="shards-$mode-$$"
  declare -A before=()
  for p in "${ports[@]}"; do redis-cli -p "$p" config resetstat >/dev/null; before[$p]="$(cpu_of_port "$p")"; done
  start=$(date +%s.%N)
  # SLOWLOG=FILE: every command's time on the first server (JSON lines).
  [ -n "${SLOWLOG:-}" ] && redis-cli -p "${ports[0]}" config set slowlog-log-slower-than 0 >/dev/null \
    && redis-cli -p "${ports[0]}" config set slowlog-max-len 1000000 >/dev/null && redis-cli -p "${ports[0]}" slowlog reset >/dev/null
  # MONITOR=FILE: two seconds of the first server's commands, from 3 s in.
  [ -n "${MONITOR:-}" ] && (sleep 3; timeout 2 redis-cli -p "${ports[0]}" monitor > "$MONITOR.$mode") &
  crawl_once "$url" "$crawl"
  end=$(date +%s.%N)
  cpus=(); calls=0; stats=""
  for p in "${ports[@]}"; do
    cpus+=($(( $(cpu_of_port "$p") - ${before[$p]} )))
    c="$(redis-cli -p "$p" info commandstats | tr -d '\r' | awk -F'[=,]' '/^cmdstat_evalsha:/{n+=$2} END{print n+0}')"
    calls=$((calls + c))
    [ -n "${VERBOSE:-}" ] && stats+="$(redis-cli -p "$p" info commandstats | tr -d '\r' | grep '^cmdstat_' | sed "s/^/  :$p /")"$'\n'
  done
  pages=$(cat "$OUT"/w*.jsonl | wc -l)
  if [ -n "${SLOWLOG:-}" ]; then
    python3 - "${ports[0]}" "$SLOWLOG.$mode" <<'PY'
import sys, json, redis
r = redis.Redis(port=int(sys.argv[1]))
with open(sys.argv[2], "w") as f:
    for e in r.slowlog_get(1000000):
        f.write(json.dumps({"us": e["duration"], "cmd": e["command"].decode("latin-1")[:200]}) + "\n")
r.config_set("slowlog-log-slower-than", 10000)
PY
  fi
  python3 - "$mode" "$pages" "$start" "$end" "$calls" "$TRUTH" "${cpus[@]}" <<'PY'
import sys, os
mode, pages, s, e, calls, truth, *cpus = sys.argv[1:]
pages = int(pages); wall = float(e) - float(s); hz = os.sysconf("SC_CLK_TCK")
cpus = [int(c) / hz for c in cpus]
total = sum(cpus); busiest = max(cpus)
print(f"| {mode} | {pages} | {wall:.2f} | {pages/wall:,.0f} | {total/pages*1e6:.1f} | {int(calls)/pages:.2f} "
      f"| {busiest/pages*1e6:.1f} | {pages/busiest if busiest else float('inf'):,.0f} |")
if pages != int(truth): print(f"WARNING: {pages} items, ground truth {truth}")
PY
  [ -n "${VERBOSE:-}" ] && printf '%s' "$stats"
  for p in "${ports[@]}"; do forget_crawl "$p" "$crawl"; done
  rm -f "$OUT"/w*.jsonl
done

# REPLAY=1: each mode crawled once more with every server's commands
# captured (MONITOR), and each capture replayed on a fresh redis-server
# with core 1 to itself (bench/redis_replay.py): the Redis CPU per page a
# shard costs when it is not sharing cores with the crawl, and the
# capacity of the crawl's servers together if their sites were balanced.
if [ -n "${REPLAY:-}" ]; then
  command -v taskset >/dev/null || { echo "REPLAY needs taskset (util-linux)" >&2; exit 1; }
  echo
  echo "Replayed, one command at a time, each server on a core of its own:"
  echo
  echo "| frontier / server | its pages (leases) | scripts/page | Redis CPU µs/page | pages/s at saturation |"
  echo "|---|---:|---:|---:|---:|"
  for mode in $MODES; do
    mode_servers "$mode"
    crawl="replay-$mode-$$"
    mons=()
    for p in "${ports[@]}"; do
      # Scripts flushed, so the workers load them again (into the capture).
      redis-cli -p "$p" script flush >/dev/null
      stdbuf -oL redis-cli -p "$p" monitor > "$OUT/monitor-$p" 2>/dev/null & mons+=($!)
    done
    crawl_once "$url" "$crawl"
    sleep 0.5  # the monitors' last lines (written a line at a time)
    for m in "${mons[@]}"; do kill "$m" 2>/dev/null || true; wait "$m" 2>/dev/null || true; done
    total=0
    for p in "${ports[@]}"; do
      row="$(taskset -c 0 python3 "$ROOT/bench/redis_replay.py" "$OUT/monitor-$p" "$mode :$p" 1)"
      echo "$row"
      total="$(echo "$row" | awk -F'|' -v t="$total" '{ gsub(/[ ,]/, "", $6); print t + ($6 == "-" ? 0 : $6) }')"
      forget_crawl "$p" "$crawl"
      rm -f "$OUT/monitor-$p"
    done
    printf '| **%s, all servers** | | | | **%s** |\n' "$mode" "$(python3 -c "print(f'{$total:,.0f}')")"
    rm -f "$OUT"/w*.jsonl
  done
fi

if [ "${FOOTPRINT:-1}" != 0 ]; then
  N="${FOOTPRINT_URLS:-200000}"
  echo
  echo "Per URL ($N URLs over 1,000 hosts, each on a fresh redis-server):"
  echo
  echo "| seen-set | URLs | taken as new | bytes/URL queued | bytes/URL done | RDB bytes/URL queued | RDB bytes/URL done | push CPU µs/URL | lease+fetched+ack CPU µs/URL |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  for seen in exact "bloom:$N:0.01" "bloom:$N:0.001"; do
    port="$(free_port)"; start_redis "$port"
    "$BIN/examples/redis_footprint" "$N" "redis://127.0.0.1:$port" "$seen"
  done
fi
