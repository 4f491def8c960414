#!/usr/bin/env bash
# Frontier scale benchmark: push URLS URLs over HOSTS hosts (each twice: the
# second pass must be dropped as duplicates), then lease + fetched + ack all
# of them; prints ops/s and peak RSS. Default: the embedded (fjall) frontier
# at 10 M URLs over 100,000 hosts, ~7 minutes on 2 cores.
#
#   bash bench/frontier.sh [URLS] [HOSTS] [disk|memory|redis] [REDIS_URL]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
(cd "$ROOT" && cargo build --release --quiet -p trawl-frontier --example frontier_bench)
/usr/bin/time -f "wall %e s, peak RSS %M KiB" \
  "$ROOT/target/release/examples/frontier_bench" "${1:-10000000}" "${2:-100000}" "${3:-disk}" "${4:-redis://127.0.0.1:6379}"
