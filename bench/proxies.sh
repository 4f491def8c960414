#!/usr/bin/env bash
# trawl proxy benchmark, against real proxy servers on loopback:
#
#  1. a defended test site (rate limit per client IP, 429 + Retry-After to a
#     banned client) crawled directly and through 1, 4 and 16 proxies, each
#     proxy sending from its own address (127.0.0.2 … 127.0.0.17), so the
#     site sees one client per proxy: success rate, pages/s, bans, rotations;
#  2. proxy overhead on an undefended site: direct vs 1 tinyproxy (HTTP
#     proxy) vs 1 microsocks (SOCKS5), same concurrency: pages/s and CPU.
#
#   bash bench/proxies.sh                   # defaults, about 2 minutes
#   REPEAT=1 DEF_CAP_PER_PROXY=100 bash bench/proxies.sh   # quick run
#
# The pool: 16 proxies, tinyproxy on 127.0.0.2 … and SOCKS_IN_POOL (4)
# microsocks on the last addresses (… 127.0.0.17). The 1- and 4-proxy runs
# use tinyproxy only; the 16-proxy run uses all 16 (a mixed pool). The
# overhead runs use the first tinyproxy and the first microsocks.
#
# Knobs: DEF_PAGES (2000: /p/ pages of the defended site), DEFENDED (20/1s:
# --defended N/WINDOW), BAN_FOR (1s), BAN_ANSWER (429), BAN_BY (ip),
# DEF_CAP_PER_PROXY (300: a run through N proxies stops after N×300 pages,
# so the slow runs stay under a minute; 0 = no cap), DEF_POOLS ("0 1 4 16"),
# PAGES (5000: /p/ pages of the undefended site), CONC (64: --concurrency
# and --per-host, both parts), REPEAT (3: the overhead runs are repeated,
# interleaved, and the median by wall time is shown), SOCKS_IN_POOL (4),
# SKIP_BUILD (0), KEEP_TMP (0: 1 keeps the temporary directory),
# TRAWL_BIN_DIR (target/release).
# Results: printed, and written to bench/out/proxies-results.md. Outputs,
# stats, logs, /usr/bin/time -v files and the proxies' configurations and
# logs go to a temporary directory removed at the end (kept on failure).
#
# tinyproxy and microsocks run as the current user (root included): the
# tinyproxy configuration has no User/Group line.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
BIN="${TRAWL_BIN_DIR:-$ROOT/target/release}"
export DEF_PAGES="${DEF_PAGES:-2000}" DEFENDED="${DEFENDED:-20/1s}" BAN_FOR="${BAN_FOR:-1s}"
export BAN_ANSWER="${BAN_ANSWER:-429}" BAN_BY="${BAN_BY:-ip}"
export DEF_CAP_PER_PROXY="${DEF_CAP_PER_PROXY:-300}" DEF_POOLS="${DEF_POOLS:-0 1 4 16}"
export PAGES="${PAGES:-5000}" CONC="${CONC:-64}" REPEAT="${REPEAT:-3}"
SOCKS_IN_POOL="${SOCKS_IN_POOL:-4}"
POOL_SIZE=16
RESULTS_DIR="$BENCH_DIR/out"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/trawl-proxies.XXXXXX")"

if ((SOCKS_IN_POOL < 1 || SOCKS_IN_POOL >= POOL_SIZE)); then
    echo "SOCKS_IN_POOL must be 1 to $((POOL_SIZE - 1)) (the overhead runs need one of each)" >&2
    exit 2
fi

# --- cleanup: stop everything we started, by recorded pid only ------------
DRIVER_PID=""
PIDS=() # test sites and proxies
cleanup() {
    local i pid
    if [[ -n "$DRIVER_PID" ]] && kill -0 "$DRIVER_PID" 2>/dev/null; then
        # The driver ends its own trawl run (own process group) on SIGTERM.
        kill -TERM "$DRIVER_PID" 2>/dev/null || true
        for i in $(seq 50); do kill -0 "$DRIVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$DRIVER_PID" 2>/dev/null || true
    fi
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for i in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
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
command -v tinyproxy >/dev/null 2>&1 || need_apt+=(tinyproxy)
command -v microsocks >/dev/null 2>&1 || need_apt+=(microsocks)
if ((${#need_apt[@]})); then
    echo "installing with apt-get: ${need_apt[*]}"
    SUDO=""
    [[ "$(id -u)" == 0 ]] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# --- build ----------------------------------------------------------------
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    echo "building trawl and trawl-testsite (release)"
    (cd "$ROOT" && cargo build --release --quiet -p trawl -p trawl-testsite)
fi

# --- test sites -------------------------------------------------------------
# start_site NAME ARGS...: starts a test site, sets SITE_URL and SITE_PID.
start_site() {
    local name="$1" url="" pid
    shift
    "$BIN/trawl-testsite" --addr 127.0.0.1:0 --no-log "$@" \
        >"$TMP/$name.out" 2>"$TMP/$name.err" &
    pid=$!
    PIDS+=("$pid")
    for _ in $(seq 100); do
        url="$(head -n1 "$TMP/$name.out" 2>/dev/null || true)"
        [[ -n "$url" ]] && break
        kill -0 "$pid" 2>/dev/null || { cat "$TMP/$name.err" >&2; exit 1; }
        sleep 0.1
    done
    [[ -n "$url" ]] || { echo "test site $name did not print its URL" >&2; exit 1; }
    SITE_URL="${url%/}"
    SITE_PID="$pid"
}

start_site defended --pages "$DEF_PAGES" --defended "$DEFENDED" --ban-for "$BAN_FOR" \
    --ban-answer "$BAN_ANSWER" --ban-by "$BAN_BY"
export DEF_BASE="$SITE_URL" DEF_SITE_PID="$SITE_PID"
echo "defended site: $DEF_BASE (pid $SITE_PID, $DEF_PAGES pages, --defended $DEFENDED" \
    "--ban-for $BAN_FOR --ban-answer $BAN_ANSWER --ban-by $BAN_BY)"
start_site plain --pages "$PAGES"
export PLAIN_BASE="$SITE_URL" PLAIN_SITE_PID="$SITE_PID"
echo "undefended site: $PLAIN_BASE (pid $SITE_PID, $PAGES pages)"
# Pages a complete crawl fetches (every page reachable from /).
DEF_TRUTH="$("$BIN/trawl-testsite" --pages "$DEF_PAGES" --print-ground-truth | wc -l)"
PLAIN_TRUTH="$("$BIN/trawl-testsite" --pages "$PAGES" --print-ground-truth | wc -l)"
export DEF_TRUTH PLAIN_TRUTH

# --- proxies ----------------------------------------------------------------
# Free ports on 127.0.0.1 (free a moment ago; a proxy that cannot bind
# exits, and the wait below reports it with its log).
mapfile -t PORTS < <(python3 - "$POOL_SIZE" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
PY
)

# Whether the program answers on the port like itself (as the probe of
# crates/testsite/src/proxies.rs): tinyproxy sends an error page naming
# itself for a bare GET /, microsocks answers a SOCKS5 greeting with 05 00.
probe() {
    local kind="$1" port="$2" out
    if [[ "$kind" == tinyproxy ]]; then
        out="$(timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port && printf 'GET / HTTP/1.0\r\n\r\n' >&3 && head -c 4000 <&3" </dev/null 2>/dev/null || true)"
        [[ "${out,,}" == http/1.* && "${out,,}" == *tinyproxy* ]]
    else
        out="$(timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port && printf '\x05\x01\x00' >&3 && head -c 2 <&3 | od -An -tx1" </dev/null 2>/dev/null || true)"
        [[ "$out" == *"05 00"* ]]
    fi
}

PROXY_LIST="$TMP/proxies.txt" # kind url pid outgoing-ip, one proxy a line
: >"$PROXY_LIST"
for ((i = 0; i < POOL_SIZE; i++)); do
    port="${PORTS[$i]}"
    ip="127.0.0.$((i + 2))"
    log="$TMP/proxy-$ip.log"
    if ((i < POOL_SIZE - SOCKS_IN_POOL)); then
        kind=tinyproxy
        conf="$TMP/tinyproxy-$ip.conf"
        cat >"$conf" <<EOF
# Written by bench/proxies.sh (as crates/testsite/src/proxies.rs).
Port $port
Listen 127.0.0.1
Bind $ip
Allow 127.0.0.0/8
MaxClients 1024
Timeout 600
Syslog Off
LogLevel Warning
PidFile "$TMP/tinyproxy-$ip.pid"
DisableViaHeader Yes
EOF
        tinyproxy -d -c "$conf" </dev/null >"$log" 2>&1 &
        url="http://127.0.0.1:$port"
    else
        kind=microsocks
        microsocks -i 127.0.0.1 -p "$port" -b "$ip" </dev/null >"$log" 2>&1 &
        url="socks5://127.0.0.1:$port"
    fi
    pid=$!
    PIDS+=("$pid")
    echo "$kind $url $pid $ip" >>"$PROXY_LIST"
done
while read -r kind url pid ip; do
    port="${url##*:}"
    ok=0
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        if probe "$kind" "$port"; then ok=1; break; fi
        sleep 0.1
    done
    if ((ok == 0)); then
        echo "$kind on port $port (outgoing $ip) did not start; its output:" >&2
        sed 's/^/   | /' "$TMP/proxy-$ip.log" >&2
        KEEP_TMP=1
        exit 1
    fi
done <"$PROXY_LIST"
echo "proxies: $((POOL_SIZE - SOCKS_IN_POOL)) tinyproxy ($(tinyproxy -v 2>&1 | head -n1))" \
    "on 127.0.0.2-$((POOL_SIZE - SOCKS_IN_POOL + 1)), $SOCKS_IN_POOL microsocks" \
    "on 127.0.0.$((POOL_SIZE - SOCKS_IN_POOL + 2))-$((POOL_SIZE + 1)), all answering"
echo "outputs in $TMP"
export PROXY_LIST TMP TRAWL="$BIN/trawl" RESULTS_DIR

# --- run ----------------------------------------------------------------
# In the background + wait, so that a signal to this script runs the trap
# at once instead of after the driver finishes.
python3 "$BENCH_DIR/proxies.py" &
DRIVER_PID=$!
rc=0
wait "$DRIVER_PID" || rc=$?
DRIVER_PID=""
# A failed check keeps the outputs and logs for a look (not an interrupt).
if ((rc == 1)); then KEEP_TMP=1; fi
exit "$rc"
