#!/usr/bin/env bash
# The parse stage's CPU budget per page, as an instruction count that a
# busy machine does not move: the `parse_budget` example (every HTML page
# of python3.11-doc and postgresql-doc-15 through the engine's parse stage
# and the JSONL serializer) under callgrind, counting only its `measure`
# function. Compare with bench/parse_budget.txt (the figure recorded with
# the last change that moved it); more than 2 % above it is a regression.
#
#   bash bench/parse_budget.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/bench/docsite.sh"
docsite_need
command -v valgrind >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; }
(cd "$ROOT" && cargo build --release --quiet -p trawl-engine --example parse_budget)
OUT="$(mktemp)"
trap 'rm -f "$OUT"' EXIT
line="$(valgrind --tool=callgrind --callgrind-out-file="$OUT" --collect-atstart=no \
  --toggle-collect='parse_budget::measure' "$ROOT/target/release/examples/parse_budget" 2>/dev/null)"
echo "$line"
pages="$(echo "$line" | cut -d' ' -f1)"
total="$(grep -E '^(summary|totals):' "$OUT" | head -1 | awk '{print $2}')"
per_page=$((total / pages))
echo "instructions per page (parse stage + JSONL): $per_page"
budget_file="$ROOT/bench/parse_budget.txt"
if [ -f "$budget_file" ]; then
  budget="$(grep -oE '^[0-9]+' "$budget_file" | head -1)"
  python3 -c "b=$budget; n=$per_page; c=100*(n-b)/b; print(f'recorded budget: {b}; now {c:+.1f} %' + ('  REGRESSION' if c > 2 else ''))"
fi
