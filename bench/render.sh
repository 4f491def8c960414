#!/usr/bin/env bash
# Rendering benchmark: trawl's tabs vs Playwright for Python on the same
# Debian Chromium (1, 2, 4 tabs), and plain vs auto vs always on a site
# where every 10th page is built by script; pages from python3.11-doc,
# served by nginx with a per-response rate limit (a real origin's pace).
# See bench/render.py for the knobs (TABS, JS_PAGES, MIXED, RATE, …).
#
#   bash bench/render.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v chromium >/dev/null || need+=(chromium)
[ -d /usr/share/doc/python3.11/html ] || need+=(python3.11-doc)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
# Playwright drives Debian's Chromium (its own browser download is not used).
python3 -c 'import playwright' 2>/dev/null || python3 -m pip install -q playwright || python3 -m pip install -q --break-system-packages playwright
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release -p trawl
exec python3 bench/render.py
