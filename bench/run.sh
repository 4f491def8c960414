#!/usr/bin/env bash
# trawl benchmark: trawl vs wget2 vs Scrapy crawling the local test site,
# plus the site's own ceiling measured with wrk. Loopback traffic only.
#
#   bash bench/run.sh                 # defaults: 50k pages, concurrency 256
#   PAGES=3000 SCRAPY_PAGES=1000 bash bench/run.sh
#
# Knobs: PAGES (50000), CONC (256), FANOUT (80), PAGE_BYTES (10000),
# SEED (1), SCRAPY_PAGES (10000), WRK_SECS (10),
# CRAWLERS (trawl,wget2,scrapy), SCRAPY_CANONICALIZE (1), SKIP_BUILD (0),
# BENCH_OUT (output directory, default bench/out).
# Results: bench/out/results.md (+ per-run logs, /usr/bin/time -v output).
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
OUT="${BENCH_OUT:-$BENCH_DIR/out}"
export BENCH_OUT="$OUT"
VENV="$BENCH_DIR/.venv"
mkdir -p "$OUT"

export PAGES="${PAGES:-50000}" CONC="${CONC:-256}" FANOUT="${FANOUT:-80}"
export PAGE_BYTES="${PAGE_BYTES:-10000}" SEED="${SEED:-1}"
export SCRAPY_PAGES="${SCRAPY_PAGES:-10000}" WRK_SECS="${WRK_SECS:-10}"

# --- cleanup: the driver stops each test site itself; this catches the one
# left running if the driver is killed. Only the recorded pid is touched.
BENCH_PID=""
cleanup() {
    local pidfile="$OUT/site.pid" pid i
    # Stop the driver first: it ends the crawler and the site it started.
    if [[ -n "$BENCH_PID" ]] && kill -0 "$BENCH_PID" 2>/dev/null; then
        kill -TERM "$BENCH_PID" 2>/dev/null || true
        for i in $(seq 50); do kill -0 "$BENCH_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$BENCH_PID" 2>/dev/null || true
    fi
    if [[ -f "$pidfile" ]]; then
        pid="$(cat "$pidfile")"
        if [[ -n "$pid" && "$(cat "/proc/$pid/comm" 2>/dev/null)" == trawl-testsite* ]]; then
            kill -INT "$pid" 2>/dev/null || true
            sleep 0.5
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$pidfile"
    fi
    rm -rf "$OUT/wget2"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- tools --------------------------------------------------------------
need_apt=()
command -v wget2 >/dev/null 2>&1 || need_apt+=(wget2)
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
[[ -x /usr/bin/time ]] || need_apt+=(time)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-venv)
if ((${#need_apt[@]})); then
    echo "installing with apt-get: ${need_apt[*]}"
    SUDO=""
    [[ "$(id -u)" == 0 ]] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [[ ! -x "$VENV/bin/scrapy" ]]; then
    echo "installing Scrapy into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q scrapy
fi

# --- build --------------------------------------------------------------
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    echo "building trawl and trawl-testsite (release)"
    (cd "$ROOT" && cargo build --release --quiet -p trawl -p trawl-testsite)
fi

# --- run ----------------------------------------------------------------
# In the background + wait, so that a signal to this script runs the trap
# at once instead of after the driver finishes.
python3 "$BENCH_DIR/bench.py" &
BENCH_PID=$!
wait "$BENCH_PID"
BENCH_PID=""
