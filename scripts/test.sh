#!/usr/bin/env bash
# Set up what the test suite needs on a fresh Debian machine, then run it:
# formatting, lints, and every unit and integration test (real sockets,
# real processes; nothing leaves 127.0.0.0/8 or the network namespaces the
# multi-host tests make, which need root).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v cc >/dev/null || need+=(build-essential)
command -v kill >/dev/null || need+=(procps)
command -v redis-server >/dev/null || need+=(redis-server)
# The multi-host tests (crates/cli/tests/multihost.rs) put Redis, the test
# site and each worker in a network namespace of its own: ip, bridge.
{ command -v ip >/dev/null && command -v bridge >/dev/null; } || need+=(iproute2)
# PostgreSQL: the server (sink tests; a private one is started with initdb
# for the restart tests) and psql (tests read tables back with it).
command -v psql >/dev/null || need+=(postgresql-client)
{ command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || need+=(postgresql)
command -v python3 >/dev/null || need+=(python3 python3-pip)
command -v mount >/dev/null || need+=(mount)
# The CLI habit tests pipe trawl into jq and run it under timeout.
command -v jq >/dev/null || need+=(jq)
command -v timeout >/dev/null || need+=(coreutils)
# Real proxy servers for the proxy-rotation tests (HTTP/CONNECT and SOCKS5).
command -v tinyproxy >/dev/null || need+=(tinyproxy)
command -v microsocks >/dev/null || need+=(microsocks)
# A real nginx (limit_req, geo, map) for the rate-limit tests.
{ command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; } || need+=(nginx-light)
# Debian's Chromium for the rendering tests (crates/render, crates/cli/tests/render.rs).
command -v chromium >/dev/null || need+=(chromium)
# Real documentation pages: the page scanner is checked against lol_html on them.
[ -d /usr/share/doc/python3.11/html ] || need+=(python3.11-doc)
[ -d /usr/share/doc/postgresql-doc-15/html ] || need+=(postgresql-doc-15)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  fi
fi
if ! command -v cargo >/dev/null; then
  echo "cargo not found: install Rust with rustup first (https://rustup.rs)" >&2
  exit 1
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true
# The PostgreSQL sink tests need the server on 127.0.0.1:5432 (database `test`).
if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
# The Redis tests start their own redis-server on free ports.
# The NATS and AMQP sink tests use the NATS JetStream server (127.0.0.1:4222)
# and RabbitMQ (127.0.0.1:5672, guest/guest) that CI's machines run already;
# their Rust clients need no system package (no TLS library).

# The WARC writer tests (crates/sink/src/warc) read archives back with warcio.
python3 -c 'import warcio' 2>/dev/null || python3 -m pip install -q warcio || python3 -m pip install -q --break-system-packages warcio
# The Markdown comparison test (crates/extract/tests) runs trafilatura.
python3 -c 'import trafilatura' 2>/dev/null || python3 -m pip install -q trafilatura lxml_html_clean || python3 -m pip install -q --break-system-packages trafilatura lxml_html_clean

# The Scraper API tests run schemathesis against /openapi.json.
python3 -c 'import schemathesis' 2>/dev/null || python3 -m pip install -q schemathesis || python3 -m pip install -q --break-system-packages schemathesis
# The metrics tests parse /metrics with the official client's OpenMetrics parser.
python3 -c 'import prometheus_client' 2>/dev/null || python3 -m pip install -q prometheus_client || python3 -m pip install -q --break-system-packages prometheus_client

cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
