#!/usr/bin/env bash
# Rate-limit benchmark: trawl through 0, 1, 2, 4 and 8 tinyproxy exits
# against a real nginx limit_req (150 r/s per client IP, burst 30, 429),
# serving python3.11-doc replicated 60 times; rates from nginx's own log.
# See bench/ratelimit.py for the knobs (LIMIT, BURST, PAGES, EXITS, …).
#
#   bash bench/ratelimit.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v tinyproxy >/dev/null || need+=(tinyproxy)
[ -d /usr/share/doc/python3.11/html ] || need+=(python3.11-doc)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release -p trawl
exec python3 bench/ratelimit.py
