#!/usr/bin/env bash
# Instructions per page of a whole crawl, a figure a busy machine does not
# move: the real-page site of bench/realpages.sh (python3.11-doc and
# postgresql-doc-15, COPIES copies, Debian's nginx) crawled by trawl under
# callgrind, once with defaults and once with `--duplicates off --no-traps`
# (the cost of SimHash, the duplicate index and trap detection). About
# 15 minutes per crawl at 19 copies.
#
#   bash bench/crawl_instructions.sh                 # COPIES=19 MODES=trawl,trawl-nodup
#   COPIES=3 MODES=trawl bash bench/crawl_instructions.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=bench/docsite.sh
source "$ROOT/bench/docsite.sh"
COPIES="${COPIES:-19}" MODES="${MODES:-trawl,trawl-nodup}"
command -v valgrind >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; }
[ "${SKIP_BUILD:-0}" = 1 ] || (cd "$ROOT" && cargo build --release --quiet -p trawl)
BIN="${TRAWL_BIN:-$ROOT/target/release/trawl}"
WORK="$(mktemp -d)"
trap 'docsite_stop; rm -rf "$WORK"' EXIT
docsite_start "$WORK" "$COPIES" python,postgresql
SKIP_RE='\.(txt|zip|bz2|gz|tar|epub|pdf|png|jpg|jpeg|gif|svg|css|js|ico|woff|woff2|ttf)$'
for mode in ${MODES//,/ }; do
  extra=()
  [ "$mode" = trawl-nodup ] && extra=(--duplicates off --no-traps)
  docsite_restart
  valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.$mode" "$BIN" crawl "$DOCSITE_URL" -q \
    --ignore-robots --concurrency 64 --per-host 64 --max-pages 10000000 --exclude "$SKIP_RE" \
    "${extra[@]}" --stats-json "$WORK/stats.$mode.json" -o "$WORK/out.jsonl" 2>"$WORK/err.$mode"
  pages="$(jq .pages "$WORK/stats.$mode.json")"
  total="$(grep -E '^(summary|totals):' "$WORK/cg.$mode" | head -1 | awk '{print $2}')"
  echo "$mode: $pages pages, $((total / pages)) instructions per page"
done
