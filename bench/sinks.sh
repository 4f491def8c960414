#!/usr/bin/env bash
# trawl sink benchmark: items/s, peak RSS and CPU of `trawl run` on the test
# site's shop into each output alone (JSONL, CSV, CSV gzip, WARC, PostgreSQL
# COPY) and into all of them at once; then PostgreSQL COPY vs row-by-row
# INSERT (mode=rows) through the crawl, next to a psql-only ceiling (\copy
# of the same JSONL into a jsonb table, and the same rows as single INSERTs
# in one transaction). Loopback traffic and a local PostgreSQL only.
#
#   bash bench/sinks.sh                     # defaults: 20000 products, conc 64
#   PRODUCTS=2000 REPEAT=1 bash bench/sinks.sh   # quick run
#   ONLY=jsonl,nats,amqp bash bench/sinks.sh     # some configurations only
#
# Needs a PostgreSQL that PG_URL reaches without a password (the tables
# bench_copy_*, bench_rows_*, bench_all_* and bench_ceiling_* in it are
# dropped before each run and at the end). The nats row needs NATS
# JetStream at NATS_URL (nats://127.0.0.1:4222), the amqp row RabbitMQ at
# AMQP_URL (amqp://guest:guest@127.0.0.1:5672/%2f); each run's stream or
# queue is checked to hold every product once, then deleted.
#
# Knobs: PRODUCTS (20000), CONC (64; --concurrency and --per-host),
# REPEAT (3: every configuration runs REPEAT times, interleaved; the table
# shows the median run), PG_URL (postgres://postgres@127.0.0.1:5432/test),
# SKIP_BUILD (0), KEEP_TMP (0: 1 keeps the temporary output directory),
# TRAWL_BIN_DIR (target/release). A failed run keeps the temporary directory.
# Results: printed, and written to bench/out/sinks-results.md. Everything
# else (items, WARC files, stats, logs, /usr/bin/time -v output) goes to a
# temporary directory that is removed at the end.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
BIN="${TRAWL_BIN_DIR:-$ROOT/target/release}"
export PRODUCTS="${PRODUCTS:-20000}" CONC="${CONC:-64}" REPEAT="${REPEAT:-3}"
export PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432/test}"
RESULTS_DIR="$BENCH_DIR/out"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/trawl-sinks.XXXXXX")"

# The tables this benchmark writes (their prefixes are fixed in sinks.py).
drop_bench_tables() {
    command -v psql >/dev/null 2>&1 || return 0
    psql "$PG_URL" -q -X -v ON_ERROR_STOP=1 >/dev/null 2>&1 <<'SQL' || true
SELECT format('DROP TABLE IF EXISTS %I', tablename) FROM pg_tables
 WHERE schemaname = current_schema()
   AND (tablename LIKE 'bench\_copy\_%' OR tablename LIKE 'bench\_rows\_%'
        OR tablename LIKE 'bench\_all\_%' OR tablename LIKE 'bench\_ceiling\_%')
\gexec
SQL
}

# --- cleanup: stop what we started (by recorded pid only), drop the tables,
# remove the temporary directory.
SITE_PID=""
DRIVER_PID=""
cleanup() {
    local i
    if [[ -n "$DRIVER_PID" ]] && kill -0 "$DRIVER_PID" 2>/dev/null; then
        # The driver ends its own trawl run (own process group) on SIGTERM.
        kill -TERM "$DRIVER_PID" 2>/dev/null || true
        for i in $(seq 50); do kill -0 "$DRIVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$DRIVER_PID" 2>/dev/null || true
    fi
    if [[ -n "$SITE_PID" ]] && kill -0 "$SITE_PID" 2>/dev/null; then
        kill -INT "$SITE_PID" 2>/dev/null || true
        for i in $(seq 20); do kill -0 "$SITE_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SITE_PID" 2>/dev/null || true
    fi
    drop_bench_tables
    if [[ "${KEEP_TMP:-0}" == 1 ]]; then
        echo "kept the outputs in $TMP"
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- tools (same approach as bench/run.sh) --------------------------------
need_apt=()
[[ -x /usr/bin/time ]] || need_apt+=(time)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
command -v psql >/dev/null 2>&1 || need_apt+=(postgresql-client)
if ((${#need_apt[@]})); then
    echo "installing with apt-get: ${need_apt[*]}"
    SUDO=""
    [[ "$(id -u)" == 0 ]] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if ! psql "$PG_URL" -q -X -tA -c 'SELECT 1' >/dev/null 2>"$TMP/psql.err"; then
    echo "cannot reach PostgreSQL at $PG_URL:" >&2
    cat "$TMP/psql.err" >&2
    exit 1
fi

# --- build ----------------------------------------------------------------
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    echo "building trawl and trawl-testsite (release)"
    (cd "$ROOT" && cargo build --release --quiet -p trawl -p trawl-testsite)
    # Reads the amqp row's queue back.
    (cd "$ROOT" && cargo build --release --quiet -p trawl-sink --example amqp_consume)
fi

# --- test site --------------------------------------------------------------
"$BIN/trawl-testsite" --addr 127.0.0.1:0 --shop --shop-products "$PRODUCTS" \
    --no-log >"$TMP/site.out" 2>"$TMP/site.err" &
SITE_PID=$!
BASE=""
for _ in $(seq 100); do
    BASE="$(head -n1 "$TMP/site.out" 2>/dev/null || true)"
    [[ -n "$BASE" ]] && break
    kill -0 "$SITE_PID" 2>/dev/null || { cat "$TMP/site.err" >&2; exit 1; }
    sleep 0.1
done
[[ -n "$BASE" ]] || { echo "test site did not print its URL" >&2; exit 1; }
export BASE="${BASE%/}" SITE_PID TMP TRAWL="$BIN/trawl" RESULTS_DIR
echo "test site: $BASE (pid $SITE_PID, $PRODUCTS products, $(((PRODUCTS + 19) / 20)) listing pages)"
echo "outputs in $TMP"

# --- run ----------------------------------------------------------------
# In the background + wait, so that a signal to this script runs the trap
# at once instead of after the driver finishes.
drop_bench_tables
python3 "$BENCH_DIR/sinks.py" &
DRIVER_PID=$!
rc=0
wait "$DRIVER_PID" || rc=$?
DRIVER_PID=""
# A failed check keeps the outputs and logs for a look (not an interrupt).
if ((rc == 1)); then KEEP_TMP=1; fi
exit "$rc"
