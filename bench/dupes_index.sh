#!/usr/bin/env bash
# The in-memory duplicate index at scale: bytes per page and the time of a
# check at 1 and 5 million pages (random SimHashes, 60-byte URLs; lookups
# of pages 2 bits from an indexed one, and of unrelated pages).
#
#   bash bench/dupes_index.sh            # SIZES="1000000 5000000"
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
(cd "$ROOT" && cargo build --release --quiet -p trawl-traps --example index_scale)
for n in ${SIZES:-1000000 5000000}; do
  "$ROOT/target/release/examples/index_scale" "$n"
done
