#!/usr/bin/env python3
"""Rate-limit benchmark: trawl through 0, 1, 2, 4 and 8 exits against a real
nginx `limit_req` (per client IP, answering 429), measured from nginx's own
access log.

Called by bench/ratelimit.sh (which builds trawl and installs nginx,
tinyproxy and python3.11-doc). Standard library only.

The site: Debian's python3.11-doc HTML, replicated under COPIES prefixes
(/r0/ … ) behind a root page linking every copy, served by nginx with
`limit_req_zone $binary_remote_addr rate=LIMITr/s; burst=BURST nodelay;
limit_req_status 429`. Each exit is a tinyproxy with its own outgoing
address (127.0.0.2 …), so nginx sees one client per exit.

Each run: `trawl crawl ROOT --max-pages PAGES -c CONC --per-host PER_HOST`
with N `--proxy` flags and nothing else (the defaults must do the right
thing). From the access log of the run: requests, 200s and 429s per client
IP; OK pages/s = 200 answers / (last - first request time); the ideal is
max(1, N) × LIMIT; each exit's share of the requests. Printed as a table
and written to bench/out/ratelimit-results.md.

Knobs (environment): LIMIT (150), BURST (30), PAGES (4000), CONC (64),
PER_HOST (32), EXITS ("0 1 2 4 8"), COPIES (60), TRAWL (target/release/trawl).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from ports import free_port, wait_port

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
TRAWL = Path(os.environ.get("TRAWL", ROOT / "target" / "release" / "trawl"))
LIMIT = int(os.environ.get("LIMIT", "150"))
BURST = int(os.environ.get("BURST", "30"))
PAGES = int(os.environ.get("PAGES", "4000"))
CONC = int(os.environ.get("CONC", "64"))
PER_HOST = int(os.environ.get("PER_HOST", "32"))
EXITS = [int(x) for x in os.environ.get("EXITS", "0 1 2 4 8").split()]
COPIES = int(os.environ.get("COPIES", "60"))
DOCS = Path("/usr/share/doc/python3.11/html")


def make_site(root: Path) -> int:
    """COPIES copies of the docs under /rN/ (symlinks), a root index."""
    if not DOCS.is_dir():
        raise SystemExit(f"{DOCS} is missing: apt-get install python3.11-doc")
    root.mkdir(parents=True)
    links = []
    for i in range(COPIES):
        (root / f"r{i}").symlink_to(DOCS)
        links.append(f'<li><a href="/r{i}/index.html">Copy {i}</a></li>')
    (root / "index.html").write_text(
        "<!DOCTYPE html><html><head><title>Docs</title></head><body><ul>"
        + "".join(links)
        + "</ul></body></html>"
    )
    return sum(1 for _ in DOCS.rglob("*.html")) * COPIES


def start_nginx(tmp: Path, root: Path) -> tuple[subprocess.Popen, int, Path]:
    port = free_port()
    d = tmp / "nginx"
    d.mkdir()
    log = d / "access.log"
    conf = d / "nginx.conf"
    conf.write_text(
        f"""worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 8192; }}
http {{
  include /etc/nginx/mime.types;
  client_body_temp_path {d}/cb; proxy_temp_path {d}/px; fastcgi_temp_path {d}/fc;
  uwsgi_temp_path {d}/uw; scgi_temp_path {d}/sc;
  log_format trawl '$remote_addr $msec $status';
  access_log {log} trawl buffer=256k flush=100ms;
  limit_req_zone $binary_remote_addr zone=perip:10m rate={LIMIT}r/s;
  limit_req_status 429;
  limit_req_log_level info;
  keepalive_requests 100000;
  server {{
    listen 127.0.0.1:{port};
    root {root};
    disable_symlinks off;
    limit_req zone=perip burst={BURST} nodelay;
    location / {{ index index.html; }}
  }}
}}
"""
    )
    proc = subprocess.Popen(
        ["nginx", "-p", str(d), "-c", str(conf), "-g", "daemon off; master_process off;"],
        stdout=subprocess.DEVNULL,
        stderr=open(d / "stderr.log", "w"),
    )
    wait_port(port)
    return proc, port, log


def start_tinyproxy(tmp: Path, n: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    d = tmp / f"tinyproxy{n}"
    d.mkdir()
    conf = d / "tinyproxy.conf"
    conf.write_text(
        f"Port {port}\nListen 127.0.0.1\nBind 127.0.0.{n + 2}\nTimeout 60\n"
        f"Allow 127.0.0.0/8\nMaxClients 1024\nDisableViaHeader Yes\nLogLevel Critical\n"
        f"PidFile \"{d}/tinyproxy.pid\"\n"
    )
    proc = subprocess.Popen(
        ["tinyproxy", "-d", "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(port)
    return proc, port


def read_log(log: Path, start: int) -> list[tuple[str, float, int]]:
    with log.open() as f:
        f.seek(start)
        rows = []
        for line in f:
            parts = line.split()
            if len(parts) == 3:
                rows.append((parts[0], float(parts[1]), int(parts[2])))
        return rows


def main() -> int:
    if not TRAWL.exists():
        raise SystemExit(f"{TRAWL} is missing: cargo build --release -p trawl")
    tmp = Path(tempfile.mkdtemp(prefix="trawl-ratelimit."))
    procs: list[subprocess.Popen] = []
    failures = []
    try:
        site_pages = make_site(tmp / "site")
        nginx, port, log = start_nginx(tmp, tmp / "site")
        procs.append(nginx)
        proxies = []
        for n in range(max(EXITS)):
            proc, pport = start_tinyproxy(tmp, n)
            procs.append(proc)
            proxies.append(f"http://127.0.0.1:{pport}")
        print(
            f"site: {site_pages} pages ({COPIES} copies of python3.11-doc), nginx limit_req "
            f"{LIMIT} r/s per client IP, burst {BURST} nodelay, 429; trawl -c {CONC} "
            f"--per-host {PER_HOST} --max-pages {PAGES}\n"
        )
        header = (
            "| exits | OK pages/s | ideal | ratio | 429 share | requests | wall s | "
            "each exit's share of requests |"
        )
        lines = [header, "|---:|---:|---:|---:|---:|---:|---:|---|"]
        print(header)
        print(lines[1])
        for n in EXITS:
            time.sleep(2.0)  # let every client's bucket drain
            log_start = log.stat().st_size
            out = tmp / f"items-{n}.jsonl"
            cmd = [
                str(TRAWL), "crawl", f"http://127.0.0.1:{port}/", "-q",
                "--max-pages", str(PAGES), "-c", str(CONC), "--per-host", str(PER_HOST),
                "-o", str(out), "--stats-json", str(tmp / f"stats-{n}.json"),
            ]
            for p in proxies[:n]:
                cmd += ["--proxy", p]
            t0 = time.time()
            run = subprocess.run(cmd, stderr=subprocess.PIPE, text=True)
            wall = time.time() - t0
            time.sleep(0.3)  # nginx flushes its log buffer every 100 ms
            rows = read_log(log, log_start)
            if run.returncode != 0:
                failures.append(f"{n} exits: exit {run.returncode}: {run.stderr[-500:]}")
            statuses = Counter(s for _, _, s in rows)
            ok = statuses.get(200, 0)
            times = [t for _, t, s in rows]
            span = (max(times) - min(times)) if len(times) > 1 else 0.0
            rate = ok / span if span > 0 else 0.0
            ideal = max(1, n) * LIMIT
            share_429 = statuses.get(429, 0) / max(1, len(rows))
            per_client = Counter(c for c, _, _ in rows)
            shares = ", ".join(
                f"{c.rsplit('.', 1)[-1]}: {100 * k / len(rows):.0f}%"
                for c, k in sorted(per_client.items())
            ) if n > 1 else "-"
            line = (
                f"| {n} | {rate:.1f} | {ideal} | {rate / ideal:.2f} | {100 * share_429:.2f}% | "
                f"{len(rows)} | {wall:.1f} | {shares} |"
            )
            lines.append(line)
            print(line, flush=True)
            if os.environ.get("PACE_DETAIL"):
                import json
                st = json.loads((tmp / f"stats-{n}.json").read_text())
                px = st.get("proxies") or {}
                rows = [h.get("pace") for p in px.get("proxies", []) for h in p.get("hosts", [])]
                rows += px.get("pacing", [])
                for r in rows:
                    if r:
                        print("   ", {k: r[k] for k in ("exit", "state", "rate", "sent_rate", "rate_limits", "decreases", "latency_climbs", "requests")})
        results = BENCH / "out"
        results.mkdir(exist_ok=True)
        (results / "ratelimit-results.md").write_text("\n".join(lines) + "\n")
    finally:
        for p in procs:
            p.kill()
            p.wait()
        if not os.environ.get("KEEP_TMP"):
            shutil.rmtree(tmp, ignore_errors=True)
    for f in failures:
        print("FAILED:", f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
